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

// Reader reads a backup line by line and checks it: NewReader reads the
// header, Next returns each record line, and the end of the records comes
// as io.EOF only after a trailer whose count and checksum match what was
// read, with nothing after it. Every other end is an error wrapping
// ErrInvalid (or the underlying reader's error).
type Reader struct {
	br      *bufio.Reader
	hdr     Header
	crc     hash.Hash32
	records uint64
	// off is the number of bytes consumed; start is where the records
	// begin (after the header) and end where the trailer begins.
	off, start, end int64
	lines           int    // lines read, header included
	line            []byte // the last line, reused
	err             error  // sticky: the first error or io.EOF
}

// NewReader reads and checks the header of the backup r holds.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(castagnoli)}
	line, err := rd.readLine(MaxHeader)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalid("the file is empty")
		}
		return nil, err
	}
	if rd.hdr, err = ParseHeader(line); err != nil {
		return nil, err
	}
	rd.crc.Write(line)
	rd.start = rd.off
	return rd, nil
}

// Header returns the backup's header.
func (r *Reader) Header() Header { return r.hdr }

// Next returns the next record line without its newline; the slice is
// valid until the next call. After the last record it checks the trailer
// and returns io.EOF if the backup is whole.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	line, err := r.readLine(MaxLine)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = invalid("the file ends after %d records without its trailer: it is incomplete (cut short)", r.records)
		}
		r.err = err
		return nil, err
	}
	if bytes.HasPrefix(line, []byte(trailerKey)) {
		r.end = r.off - int64(len(line))
		r.err = r.checkTrailer(line)
		return nil, r.err
	}
	r.crc.Write(line)
	r.records++
	return line[:len(line)-1], nil
}

// checkTrailer checks the trailer line against what was read, and that
// nothing follows it.
func (r *Reader) checkTrailer(line []byte) error {
	var t trailerLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || t.End == nil {
		return invalid("unreadable trailer after record %d", r.records)
	}
	if t.End.Records != r.records {
		return invalid("the trailer counts %d records but the file holds %d: records were lost or added", t.End.Records, r.records)
	}
	if sum := fmt.Sprintf("%08x", r.crc.Sum32()); t.End.CRC32C != sum {
		return invalid("checksum mismatch: the trailer says crc32c %q, the content's is %q: the file is damaged", t.End.CRC32C, sum)
	}
	if _, err := r.br.ReadByte(); err == nil {
		return invalid("data after the trailer")
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return io.EOF
}

// readLine returns the next line with its newline. A last line without
// one is refused: every line a Writer writes ends with one.
func (r *Reader) readLine(limit int) ([]byte, error) {
	r.line = r.line[:0]
	r.lines++
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(r.line)+len(frag) > limit {
			if r.lines == 1 {
				return nil, invalid("not a gantry snapshot: the first line is not a snapshot header")
			}
			return nil, invalid("line %d is longer than %d bytes", r.lines, limit)
		}
		switch {
		case err == nil:
			if len(r.line) == 0 {
				// The whole line is in the buffer: no copy. It stays
				// valid until the next read.
				r.off += int64(len(frag))
				return frag, nil
			}
			r.line = append(r.line, frag...)
			r.off += int64(len(r.line))
			return r.line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			r.line = append(r.line, frag...)
		case errors.Is(err, io.EOF):
			if len(r.line)+len(frag) == 0 {
				return nil, io.EOF
			}
			if r.lines == 1 {
				return nil, invalid("the file ends inside its header line: it is incomplete (cut short), or not a gantry snapshot")
			}
			return nil, invalid("the file ends inside line %d (after %d complete records): it is incomplete (cut short)",
				r.lines, r.records)
		default:
			return nil, err
		}
	}
}

// Span is where the records lie in the backup, valid once Next returned
// io.EOF: from the first byte after the header line to the last byte
// before the trailer. Raft's snapshots hold exactly these bytes.
func (r *Reader) Span() (offset, length int64) { return r.start, r.end - r.start }

// Records returns the number of records read so far.
func (r *Reader) Records() uint64 { return r.records }

// Verify reads a whole backup from r and checks it, without decoding the
// records: the API client checks a download with it before keeping it.
func Verify(r io.Reader) (Header, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Header{}, err
	}
	for {
		if _, err := rd.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return rd.hdr, nil
			}
			return rd.hdr, err
		}
	}
}
