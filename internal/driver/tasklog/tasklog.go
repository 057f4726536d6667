// Package tasklog keeps a task's stdout or stderr as a bounded set of
// rotated files and reads them back as one stream.
//
// The task shim writes (Writer): it owns the pipes of the task's output and
// copies them into "<base>.<offset>" files of the allocation directory, for
// example stdout.log.0, stdout.log.10485760, where offset is the position in
// the whole stream of the file's first byte. A file is closed when the next
// write would take it past the size limit (cut after the last whole line
// that fits, so a line is split only when it is longer than a file); the
// oldest files are deleted beyond the file limit. The agent reads (Reader)
// from any stream offset across the files, following the writer as it
// rotates. Naming files by offset keeps both sides stateless: no index file,
// no renames, and an offset stays valid for as long as its bytes are kept.
package tasklog

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// file is one log file: its stream offset and path.
type file struct {
	start  int64
	path   string
	legacy bool // the plain "<base>" file
}

// list returns the log files of base in dir, oldest first. A plain "<base>"
// file (written whole by shims before rotation existed) counts as the file
// at offset 0 unless a numbered file has that offset.
func list(dir, base string) ([]file, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []file
	legacy := false
	prefix := base + "."
	for _, e := range entries {
		name := e.Name()
		if name == base {
			legacy = true
			continue
		}
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || rest == "" || strings.ContainsFunc(rest, func(r rune) bool { return r < '0' || r > '9' }) {
			continue
		}
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, file{start: n, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(out, func(a, b file) int { return cmp.Compare(a.start, b.start) })
	if legacy && (len(out) == 0 || out[0].start != 0) {
		out = append([]file{{start: 0, path: filepath.Join(dir, base), legacy: true}}, out...)
	}
	return out, nil
}

func fileName(dir, base string, start int64) string {
	return filepath.Join(dir, base+"."+strconv.FormatInt(start, 10))
}
