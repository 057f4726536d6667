package tasklog

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// Reader reads a rotated log as one stream from an offset. At the end of
// what is written so far Read returns io.EOF; a later Read goes on with
// whatever was written since, in the same file or the ones the writer
// rotated to, so a follower calls Read again after a pause. Bytes deleted
// by rotation before they were read are skipped: the stream goes on at the
// oldest kept byte.
type Reader struct {
	dir, base string
	pos       int64    // stream offset of the next byte to return
	f         *os.File // nil until a file is open
	start     int64    // stream offset of f's first byte
}

// NewReader reads the log of base in dir from stream offset offset. It
// opens nothing yet: a log that does not exist reads as empty until it
// does.
func NewReader(dir, base string, offset int64) *Reader {
	return &Reader{dir: dir, base: base, pos: max(offset, 0)}
}

// Offset is the stream offset of the next byte Read returns.
func (r *Reader) Offset() int64 { return r.pos }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// Each pass opens a file or moves to the next one; the bound only
	// guards against a writer that rotates faster than we can follow.
	for range 64 {
		if r.f == nil {
			ok, err := r.open()
			if errors.Is(err, errRotatedAway) {
				continue
			}
			if err != nil || !ok {
				return 0, orEOF(err)
			}
		}
		n, err := r.f.Read(p)
		r.pos += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		// The end of this file. The writer creates the next file only
		// after its last write to this one, so once a later file exists,
		// one more read here drains this file for good.
		next, err := r.next()
		if err != nil || next == nil {
			return 0, orEOF(err)
		}
		n, err = r.f.Read(p)
		r.pos += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		_ = r.f.Close()
		r.f = nil
		if r.pos < next.start {
			// Bytes the writer never wrote (it skipped them after a
			// failure); the stream's offsets go on from the next file.
			r.pos = next.start
		}
	}
	return 0, io.EOF
}

// errRotatedAway: the file picked was deleted before it was opened.
var errRotatedAway = errors.New("log file rotated away")

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// open opens the file holding r.pos (or the oldest kept, if r.pos was
// rotated away) and seeks to r.pos. It reports false when there is no file
// yet.
func (r *Reader) open() (bool, error) {
	files, err := list(r.dir, r.base)
	if err != nil || len(files) == 0 {
		return false, err
	}
	pick := files[0]
	for _, f := range files {
		if f.start <= r.pos {
			pick = f
		}
	}
	if r.pos < pick.start {
		r.pos = pick.start
	}
	f, err := os.Open(pick.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, errRotatedAway
	}
	if err != nil {
		return false, err
	}
	if _, err := f.Seek(r.pos-pick.start, io.SeekStart); err != nil {
		_ = f.Close()
		return false, err
	}
	r.f, r.start = f, pick.start
	return true, nil
}

// next returns the first file after the open one, or nil.
func (r *Reader) next() (*file, error) {
	files, err := list(r.dir, r.base)
	if err != nil {
		return nil, err
	}
	for i := range files {
		if files[i].start > r.start {
			return &files[i], nil
		}
	}
	return nil, nil
}

// Close closes the open file, if any.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// ReadAll returns the whole kept stream of base in dir.
func ReadAll(dir, base string) ([]byte, error) {
	r := NewReader(dir, base, 0)
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}
