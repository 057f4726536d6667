package tasklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Writer appends to a rotated log. It is not safe for concurrent use: the
// shim gives each stream its own Writer and one goroutine.
type Writer struct {
	dir, base string
	maxFiles  int
	maxSize   int64

	f     *os.File // nil after a failed rotation; the next Write retries
	start int64    // stream offset of the current file's first byte
	size  int64    // bytes in the current file
	kept  []file   // files on disk, oldest first, the current one last
}

// OpenWriter continues the log of base in dir (a task restarted in place
// appends to the stream its earlier runs wrote), keeping at most maxFiles
// files of at most maxSize bytes each.
func OpenWriter(dir, base string, maxFiles int, maxSize int64) (*Writer, error) {
	if maxFiles < 1 || maxSize < 1 {
		return nil, fmt.Errorf("task log %s: need at least one file of at least one byte (got %d files of %d bytes)", base, maxFiles, maxSize)
	}
	files, err := list(dir, base)
	if err != nil {
		return nil, fmt.Errorf("task log %s: %w", base, err)
	}
	w := &Writer{dir: dir, base: base, maxFiles: maxFiles, maxSize: maxSize, kept: files}
	if len(files) == 0 {
		return w, w.create(0)
	}
	last := files[len(files)-1]
	st, err := os.Stat(last.path)
	if err != nil {
		return nil, fmt.Errorf("task log %s: %w", base, err)
	}
	if last.legacy {
		// Never append to a file of the old layout: continue after it.
		return w, w.create(last.start + st.Size())
	}
	f, err := os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("task log %s: %w", base, err)
	}
	w.f, w.start, w.size = f, last.start, st.Size()
	return w, nil
}

// Offset is the stream offset of the next byte written.
func (w *Writer) Offset() int64 { return w.start + w.size }

// Write appends p, rotating as needed. On an error (a full disk) the bytes
// not written are lost; the count says how many went to a file, and the
// next Write tries again, so the caller keeps draining the task's pipe and
// the task never blocks on a full disk.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.f == nil {
			// An earlier rotation failed half way: try again.
			if err := w.create(w.start + w.size); err != nil {
				return written, err
			}
		}
		room := w.maxSize - w.size
		if room <= 0 {
			if err := w.rotateTo(w.start + w.size); err != nil {
				return written, err
			}
			continue
		}
		chunk := p
		if int64(len(p)) > room {
			cut := bytes.LastIndexByte(p[:room], '\n') + 1
			if cut == 0 {
				if w.size > 0 {
					// The line starts in a fresh file instead of being split.
					if err := w.rotateTo(w.start + w.size); err != nil {
						return written, err
					}
					continue
				}
				cut = int(room) // a line longer than a whole file
			}
			chunk = p[:cut]
		}
		n, err := w.f.Write(chunk)
		w.size += int64(n)
		written += n
		p = p[n:]
		if err != nil {
			return written, fmt.Errorf("task log %s: %w", w.base, err)
		}
	}
	return written, nil
}

// rotateTo closes the current file and starts the one at offset start,
// then deletes the oldest files beyond the limit. The new file exists
// before any old one goes, so a reader always finds where to go on.
func (w *Writer) rotateTo(start int64) error {
	if w.f != nil {
		err := w.f.Close()
		w.f = nil
		if err != nil {
			return fmt.Errorf("task log %s: %w", w.base, err)
		}
	}
	return w.create(start)
}

func (w *Writer) create(start int64) error {
	path := fileName(w.dir, w.base, start)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		// Keep the offset: the next Write retries the same file.
		w.start, w.size = start, 0
		return fmt.Errorf("task log %s: %w", w.base, err)
	}
	w.f, w.start, w.size = f, start, 0
	if n := len(w.kept); n == 0 || w.kept[n-1].path != path {
		w.kept = append(w.kept, file{start: start, path: path})
	}
	for len(w.kept) > w.maxFiles {
		if err := os.Remove(w.kept[0].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("task log %s: removing the oldest file: %w", w.base, err)
		}
		w.kept = w.kept[1:]
	}
	return nil
}

// Close closes the current file.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Copy copies r into w until r ends, writing each read as it comes (no
// waiting for a whole line: a prompt without a newline shows at once).
// Write errors do not stop it: onError is told (at most once per run of
// failures) and reading goes on, so the writer of r never blocks. It
// returns r's error, nil at io.EOF.
func Copy(w *Writer, r io.Reader, onError func(error)) error {
	buf := make([]byte, 64<<10)
	failing := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				if !failing && onError != nil {
					onError(werr)
				}
				failing = true
			} else {
				failing = false
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
