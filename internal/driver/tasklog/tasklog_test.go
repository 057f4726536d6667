package tasklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// files returns the log files of base in dir by name, with their contents.
func files(t *testing.T, dir, base string) map[string]string {
	t.Helper()
	fs, err := list(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range fs {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f.path)] = string(b)
	}
	return out
}

func writeAll(t *testing.T, w *Writer, chunks ...string) {
	t.Helper()
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
}

func TestWriterRotates(t *testing.T) {
	cases := []struct {
		name     string
		maxFiles int
		maxSize  int64
		writes   []string
		want     map[string]string
	}{
		{"fits", 3, 100, []string{"a\n", "b\n"}, map[string]string{"out.log.0": "a\nb\n"}},
		{"cut after the last whole line", 3, 10, []string{"aaaa\nbbbb\ncccc\n"},
			map[string]string{"out.log.0": "aaaa\nbbbb\n", "out.log.10": "cccc\n"}},
		{"a line that does not fit starts a new file", 3, 10, []string{"aaaa\n", "bbbbbbb\n"},
			map[string]string{"out.log.0": "aaaa\n", "out.log.5": "bbbbbbb\n"}},
		{"a line longer than a file is split", 5, 4, []string{"abcdefghij\n"},
			map[string]string{"out.log.0": "abcd", "out.log.4": "efgh", "out.log.8": "ij\n"}},
		{"partial lines join across writes", 3, 10, []string{"aa", "aa\nbb", "bb\n"},
			map[string]string{"out.log.0": "aaaa\nbbbb\n"}},
		{"the oldest files go", 2, 4, []string{"111\n", "222\n", "333\n", "444\n"},
			map[string]string{"out.log.8": "333\n", "out.log.12": "444\n"}},
		{"one file kept", 1, 4, []string{"111\n", "222\n"}, map[string]string{"out.log.4": "222\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := OpenWriter(dir, "out.log", tc.maxFiles, tc.maxSize)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, tc.writes...)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := files(t, dir, "out.log"); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("files = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWriterRandom writes random lines in random pieces and checks the
// invariants: no file over the limit, no more files than the limit, and the
// kept files are exactly the end of what was written.
func TestWriterRandom(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		dir := t.TempDir()
		maxFiles, maxSize := 1+rng.IntN(4), int64(1+rng.IntN(64))
		w, err := OpenWriter(dir, "o", maxFiles, maxSize)
		if err != nil {
			t.Fatal(err)
		}
		var all bytes.Buffer
		for range 200 {
			line := strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(40)) + "\n"
			for len(line) > 0 {
				k := 1 + rng.IntN(len(line))
				writeAll(t, w, line[:k])
				all.WriteString(line[:k])
				line = line[k:]
			}
		}
		_ = w.Close()
		fs, _ := list(dir, "o")
		if len(fs) > maxFiles {
			t.Fatalf("seed %d: %d files, limit %d", seed, len(fs), maxFiles)
		}
		var kept bytes.Buffer
		for i, f := range fs {
			b, _ := os.ReadFile(f.path)
			if int64(len(b)) > maxSize {
				t.Fatalf("seed %d: %s holds %d bytes, limit %d", seed, f.path, len(b), maxSize)
			}
			if want := fs[0].start + int64(kept.Len()); f.start != want {
				t.Fatalf("seed %d: file %d starts at %d, the previous ends at %d", seed, i, f.start, want)
			}
			kept.Write(b)
		}
		if !bytes.HasSuffix(all.Bytes(), kept.Bytes()) || fs[0].start != int64(all.Len()-kept.Len()) {
			t.Fatalf("seed %d: kept files are not the end of the stream", seed)
		}
		got, err := ReadAll(dir, "o")
		if err != nil || !bytes.Equal(got, kept.Bytes()) {
			t.Fatalf("seed %d: ReadAll = %d bytes, %v; want the %d kept", seed, len(got), err, kept.Len())
		}
	}
}

func TestWriterContinues(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir, "out.log", 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, "aaaa\n")
	_ = w.Close()
	// A restart in place: the new writer appends to the same stream.
	w, err = OpenWriter(dir, "out.log", 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 5 {
		t.Fatalf("offset = %d, want 5", w.Offset())
	}
	writeAll(t, w, "bbbb\ncc\n")
	_ = w.Close()
	want := map[string]string{"out.log.0": "aaaa\nbbbb\n", "out.log.10": "cc\n"}
	if got := files(t, dir, "out.log"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

// A task started by a shim of the old layout wrote a plain out.log: it is
// the start of the stream, never appended to, and rotated away like any.
func TestLegacyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "out.log"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadAll(dir, "out.log"); err != nil || string(got) != "old\n" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	w, err := OpenWriter(dir, "out.log", 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, "new\n")
	if got, err := ReadAll(dir, "out.log"); err != nil || string(got) != "old\nnew\n" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if err := w.rotateTo(w.Offset()); err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, "newer\n")
	_ = w.Close()
	want := map[string]string{"out.log.4": "new\n", "out.log.8": "newer\n"}
	if got := files(t, dir, "out.log"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

// TestReaderFollows reads while the writer rotates, lagging by several
// files at times, and gets every byte once, in order.
func TestReaderFollows(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir, "o", 1000, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := NewReader(dir, "o", 0)
	defer r.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var want, got bytes.Buffer
	buf := make([]byte, 7)
	for i := range 300 {
		line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", rng.IntN(20)))
		writeAll(t, w, line)
		want.WriteString(line)
		if rng.IntN(4) == 0 {
			continue // fall behind
		}
		for {
			n, err := r.Read(buf)
			got.Write(buf[:n])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	if got.String() != want.String() {
		t.Fatalf("read %d bytes, want %d; first difference at %d", got.Len(), want.Len(), firstDiff(got.Bytes(), want.Bytes()))
	}
	if r.Offset() != w.Offset() {
		t.Fatalf("reader offset %d, writer offset %d", r.Offset(), w.Offset())
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestReaderOffsets(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir, "o", 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, "000\n", "111\n", "222\n", "333\n", "444\n") // files at 8, 12, 16 kept
	_ = w.Close()
	cases := []struct {
		offset int64
		want   string
	}{
		{0, "222\n333\n444\n"}, // rotated away: from the oldest kept byte
		{8, "222\n333\n444\n"},
		{10, "2\n333\n444\n"},
		{12, "333\n444\n"},
		{19, "\n"},
		{20, ""},
		{99, ""},
	}
	for _, tc := range cases {
		r := NewReader(dir, "o", tc.offset)
		got, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || string(got) != tc.want {
			t.Errorf("offset %d: %q, %v; want %q", tc.offset, got, err, tc.want)
		}
	}
	if got, err := ReadAll(t.TempDir(), "o"); err != nil || len(got) != 0 {
		t.Errorf("no log: %q, %v", got, err)
	}
}

// TestCopyDiskFull: while the disk is full the copy keeps draining its
// input (the task never blocks), reports the failure once, and writes
// again once there is room.
func TestCopyDiskFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full to simulate a full disk: %v", err)
	}
	dir := t.TempDir()
	w, err := OpenWriter(dir, "o", 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeAll(t, w, "before\n")
	good := w.f
	w.f = full // every write now fails with ENOSPC

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	done := make(chan error, 1)
	go func() { done <- Copy(w, pr, func(err error) { errs = append(errs, err) }) }()
	// Far more than a pipe holds: blocks unless the copy keeps reading.
	chunk := bytes.Repeat([]byte("lost\n"), 1<<10)
	for range 100 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	_ = pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()
	if len(errs) != 1 || !errors.Is(errs[0], syscall.ENOSPC) {
		t.Fatalf("errors reported = %v, want one ENOSPC", errs)
	}
	// Space is back.
	_ = full.Close()
	w.f = good
	writeAll(t, w, "after\n")
	if got, _ := ReadAll(dir, "o"); string(got) != "before\nafter\n" {
		t.Fatalf("log = %q", got)
	}
}

func TestOpenWriterRefusesNoRoom(t *testing.T) {
	for _, c := range [][2]int64{{0, 10}, {1, 0}, {-1, 10}} {
		if _, err := OpenWriter(t.TempDir(), "o", int(c[0]), c[1]); err == nil {
			t.Errorf("OpenWriter(%d files, %d bytes) succeeded", c[0], c[1])
		}
	}
}
