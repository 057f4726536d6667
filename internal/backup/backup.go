// Package backup is the file format of gantry's state backups, written by
// GET /v1/operator/snapshot (`gantry operator snapshot save`) and read by
// PUT /v1/operator/snapshot (`gantry operator snapshot restore`):
//
//	{"gantry_snapshot":2,"index":N,"time":T}                    header
//	{"node":{...}}                                              records, one JSON object a line
//	...
//	{"gantry_snapshot_end":{"records":R,"crc32c":"1a2b3c4d"}}   trailer
//
// The trailer counts the records and holds the CRC-32C (Castagnoli) of
// every byte before it, header included. A file cut short anywhere (inside
// a record, at a record boundary, right after the header) has no trailer,
// and a file altered anywhere fails the count or the checksum: both are
// refused, so a restore never installs a partial state. The checksum finds
// accidents (truncation, bit rot, a bad copy), not forgery: it is not a
// signature.
//
// Format 1, written before the trailer existed, is refused with a message
// saying so: nothing in it tells a whole file from one cut at a record
// boundary.
//
// This package knows lines, not records: the state store encodes and
// decodes them (internal/state), and the API client only checks that a
// download is whole (Verify). It imports nothing of gantry's.
package backup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// Format is the format version this build writes.
const Format = 2

// MaxLine bounds one line of a backup (a record): a reader never buffers
// more, whatever it is fed. Records are one node, job or allocation each,
// and the API refuses bodies over 4 MiB, so real records are far smaller.
const MaxLine = 64 << 20

// MaxHeader bounds a backup's header line: a reader given something else
// refuses it after this many bytes.
const MaxHeader = 4 << 10

// ErrInvalid is wrapped by every error about a backup's content: not a
// backup, an unknown format, cut short, altered. Callers answer 400 for it.
var ErrInvalid = errors.New("invalid snapshot")

// Header is a backup's first line.
type Header struct {
	// Format is the format version (Format).
	Format int `json:"gantry_snapshot"`
	// Index is the Raft index of the state the records hold.
	Index uint64 `json:"index"`
	// Time is when the copy was taken (Unix nanoseconds; 0 unknown).
	Time int64 `json:"time,omitempty"`
}

// Trailer is a backup's last line.
type Trailer struct {
	// Records is the number of record lines between header and trailer.
	Records uint64 `json:"records"`
	// CRC32C is the CRC-32C of every byte before the trailer line, as 8
	// lowercase hex digits.
	CRC32C string `json:"crc32c"`
}

// trailerKey starts a trailer line; no record has this key.
const trailerKey = `{"gantry_snapshot_end":`

type trailerLine struct {
	End *Trailer `json:"gantry_snapshot_end"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ParseHeader checks a backup's first line (with or without its newline).
func ParseHeader(line []byte) (Header, error) {
	var h Header
	line = bytes.TrimSuffix(line, []byte("\n"))
	if !bytes.HasPrefix(line, []byte(`{"gantry_snapshot":`)) || json.Unmarshal(line, &h) != nil {
		return h, invalid("not a gantry snapshot: the first line is not a snapshot header")
	}
	switch {
	case h.Format == 1:
		return h, invalid("format 1 snapshot (written before gantry checked backups for completeness): " +
			"it has no trailer, so a file cut short cannot be told from a whole one; take a new backup with a current server")
	case h.Format > Format:
		return h, invalid("format %d is newer than this build reads (up to %d)", h.Format, Format)
	case h.Format != Format:
		return h, invalid("unknown snapshot format %d", h.Format)
	}
	return h, nil
}

// Writer writes a backup: the header when made, a line per Encode, the
// trailer on Close. It buffers; Close flushes.
type Writer struct {
	bw      *bufio.Writer
	crc     hash.Hash32
	enc     *json.Encoder
	records uint64
}

// NewWriter writes h's line to w and returns a Writer for the records.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Format = Format
	bw := bufio.NewWriterSize(w, 64<<10)
	crc := crc32.New(castagnoli)
	bw2 := io.MultiWriter(bw, crc)
	enc := json.NewEncoder(bw2)
	if err := enc.Encode(&h); err != nil {
		return nil, fmt.Errorf("backup header: %w", err)
	}
	return &Writer{bw: bw, crc: crc, enc: enc}, nil
}

// Encode writes v as one record line.
func (w *Writer) Encode(v any) error {
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("backup record %d: %w", w.records+1, err)
	}
	w.records++
	return nil
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (w *Writer) Close() error {
	t := trailerLine{End: &Trailer{Records: w.records, CRC32C: fmt.Sprintf("%08x", w.crc.Sum32())}}
	b, err := json.Marshal(&t)
	if err != nil {
		return err
	}
	if _, err := w.bw.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("backup trailer: %w", err)
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
