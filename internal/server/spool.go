package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gantry-project/gantry/internal/backup"
)

// Uploaded backups are spooled to a file before they are checked and
// installed (a backup can be far larger than memory). The spool must never
// fill the disk Raft writes to: a full disk fails Raft's log writes and the
// cluster loses its leader. So an upload is bounded by
// Config.MaxSnapshotUpload (413) and by free space: it must leave
// Config.DiskReserve free on the spool's file system, checked before the
// first byte (against Content-Length when the client sent one) and again
// every spoolCheckBytes while spooling (507 as soon as it would not), and
// Raft's copy must leave the reserve free in the data dir (507). The spool
// lives in Config.SpoolDir, <DataDir>/spool by default, never in the Raft
// directory, and the file is removed when the request ends.

// spoolCheckBytes is how often (in bytes spooled) free space is checked
// again during an upload: a statfs call per 4 MiB costs nothing next to
// writing them.
const spoolCheckBytes = 4 << 20

// errDiskFreeUnknown is returned by diskFree where the platform cannot
// tell; uploads are then bounded by size only.
var errDiskFreeUnknown = errors.New("free space is unknown on this platform")

func tooLarge(limit int64) error {
	return &httpError{code: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("snapshot is larger than the limit of %s (%d bytes; server setting --max-snapshot-upload)", byteSize(limit), limit)}
}

// spoolDir is where uploads are spooled.
func (s *Server) spoolDir() string {
	if s.cfg.SpoolDir != "" {
		return s.cfg.SpoolDir
	}
	return filepath.Join(s.cfg.DataDir, "spool")
}

// freeSpace returns the bytes available to this process on dir's file
// system.
func (s *Server) freeSpace(dir string) (int64, error) {
	free := diskFree
	if s.diskFree != nil {
		free = s.diskFree
	}
	n, err := free(dir)
	if err != nil {
		return 0, err
	}
	return int64(min(n, math.MaxInt64)), nil
}

// checkSpace answers 507 unless need bytes fit on dir's file system with
// Config.DiskReserve left over.
func (s *Server) checkSpace(dir string, need int64, what string) error {
	free, err := s.freeSpace(dir)
	if errors.Is(err, errDiskFreeUnknown) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: checking free space in %s: %w", what, dir, err)
	}
	if free-need < s.cfg.DiskReserve {
		return &httpError{code: http.StatusInsufficientStorage,
			msg: fmt.Sprintf("%s: not enough free space in %s: %s free, %s needed plus a reserve of %s kept for Raft (server setting --disk-reserve)",
				what, dir, byteSize(free), byteSize(need), byteSize(s.cfg.DiskReserve))}
	}
	return nil
}

// checkBackupHeader checks that an upload starts with a backup's header
// line, without consuming it.
func checkBackupHeader(body *bufio.Reader) error {
	head, err := body.Peek(backup.MaxHeader)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		if _, err := backup.ParseHeader(head[:i]); err != nil {
			return badRequest("snapshot: %v", err)
		}
		return nil
	}
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he // too slow (deadlineBody)
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case err == nil || errors.Is(err, bufio.ErrBufferFull):
		return badRequest("snapshot: %v: not a gantry snapshot: the first line is not a snapshot header", backup.ErrInvalid)
	case errors.Is(err, io.EOF) && len(head) == 0:
		return badRequest("snapshot: %v: the upload is empty", backup.ErrInvalid)
	case errors.Is(err, io.EOF):
		return badRequest("snapshot: %v: the upload ends inside its header line", backup.ErrInvalid)
	}
	return badRequest("snapshot: reading upload: %v", err)
}

// spoolUpload copies body to a new file in the spool dir within the size
// and free-space limits; length is the declared size (-1 unknown). It
// returns the file (the caller closes and removes it) and its size; on
// error nothing is left behind.
func (s *Server) spoolUpload(body io.Reader, length int64) (*os.File, int64, error) {
	dir := s.spoolDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("snapshot: spool dir: %w", err)
	}
	sw := &spoolWriter{s: s, dir: dir, length: length}
	if err := sw.check(); err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp(dir, "restore-*.snap")
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: spooling upload: %w", err)
	}
	sw.f = f
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(sw, struct{ io.Reader }{body}, buf); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, spoolError(dir, sw, err)
	}
	return f, sw.written, nil
}

// spoolError is the answer to a failed spooling.
func spoolError(dir string, sw *spoolWriter, err error) error {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he // no space (spoolWriter), or too slow (deadlineBody)
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.Is(err, syscall.ENOSPC):
		return &httpError{code: http.StatusInsufficientStorage,
			msg: fmt.Sprintf("snapshot: the spool dir %s is full: %v", dir, err)}
	case sw.werr != nil:
		return fmt.Errorf("snapshot: spooling upload: %w", err)
	}
	return badRequest("snapshot: reading upload: %v", err)
}

// spoolWriter writes an upload to its spool file, checking free space
// every spoolCheckBytes.
type spoolWriter struct {
	s         *Server
	dir       string
	f         *os.File
	length    int64 // declared size, -1 unknown
	written   int64
	unchecked int64 // bytes written since the last check
	werr      error // a write error of the file (not of the body)
}

// check answers 507 unless the rest of the upload (when its size is
// known, else the next spoolCheckBytes) fits with the reserve left over.
func (w *spoolWriter) check() error {
	need := int64(spoolCheckBytes)
	if w.length >= 0 {
		need = max(w.length-w.written, 0)
	}
	w.unchecked = 0
	return w.s.checkSpace(w.dir, need, "snapshot upload")
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.unchecked >= spoolCheckBytes {
		if err := w.check(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.written += int64(n)
	w.unchecked += int64(n)
	if err != nil {
		w.werr = err
	}
	return n, err
}

// byteSize renders n bytes for a message: "512 B", "3.2 MiB", "4.0 GiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
