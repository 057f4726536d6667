package docker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

// entry is one log entry of a synthetic daemon stream.
type entry struct {
	stream byte
	ts     time.Time
	text   string
}

func muxStream(entries ...entry) *bytes.Reader {
	var b bytes.Buffer
	for _, e := range entries {
		payload := e.text
		if !e.ts.IsZero() {
			payload = e.ts.Format(time.RFC3339Nano) + " " + e.text
		}
		var hdr [8]byte
		hdr[0] = e.stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
		b.Write(hdr[:])
		b.WriteString(payload)
	}
	return bytes.NewReader(b.Bytes())
}

func newTestCopier(t *testing.T, dir, container string) *logCopier {
	t.Helper()
	cfg := &driver.TaskConfig{AllocDir: dir, Logs: structs.LogConfig{MaxFiles: 3, MaxFileSizeMB: 1}}
	c, err := openLogs(nil, cfg, container, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readLog(t *testing.T, dir, base string) string {
	t.Helper()
	b, err := tasklog.ReadAll(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCopyFramesDemux: entries go to stdout or stderr without their
// timestamps; an entry longer than the copy buffer is copied in pieces;
// the daemon's own error (stream 3) stops the copy with its text.
func TestCopyFramesDemux(t *testing.T) {
	dir := t.TempDir()
	c := newTestCopier(t, dir, "c1")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	long := strings.Repeat("x", 3*logChunk+5) + "\n"
	err := c.copyFrames(muxStream(
		entry{1, t0, "out 1\n"},
		entry{2, t0.Add(time.Microsecond), "err 1\n"},
		entry{1, t0.Add(2 * time.Microsecond), long},
		entry{1, time.Time{}, "no timestamp\n"},
	), cursor{Container: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, dir, driver.StdoutFile); got != "out 1\n"+long+"no timestamp\n" {
		t.Errorf("stdout = %.40q... (%d bytes)", got, len(got))
	}
	if got := readLog(t, dir, driver.StderrFile); got != "err 1\n" {
		t.Errorf("stderr = %q", got)
	}
	if c.cur.Time != t0.Add(2*time.Microsecond) || c.cur.Count != 1 {
		t.Errorf("cursor %+v", c.cur)
	}
	err = c.copyFrames(muxStream(entry{3, time.Time{}, "log driver failed\n"}), c.cur)
	if err == nil || !strings.Contains(err.Error(), "log driver failed") {
		t.Errorf("daemon error = %v", err)
	}
	c.close()
}

// TestCopyFramesResume: a stream resumed at the cursor (the daemon's since
// filter includes entries at that instant) skips exactly the entries at
// that instant already written, so nothing is written twice or lost, and
// the cursor is saved on close for the next agent.
func TestCopyFramesResume(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Millisecond)
	c := newTestCopier(t, dir, "c1")
	// Two entries share t1: the first run writes one of them.
	if err := c.copyFrames(muxStream(entry{1, t0, "a\n"}, entry{1, t1, "b\n"}), cursor{Container: "c1"}); err != nil {
		t.Fatal(err)
	}
	c.close()
	var saved cursor
	b, err := os.ReadFile(filepath.Join(dir, cursorFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &saved); err != nil || saved.Count != 1 || !saved.Time.Equal(t1) {
		t.Fatalf("saved cursor %s (%v)", b, err)
	}

	c2 := newTestCopier(t, dir, "c1")
	if c2.cur != saved {
		t.Fatalf("reopened cursor %+v, want %+v", c2.cur, saved)
	}
	// The daemon resends from t1: "b" again, then "c" at t1 too, then "d".
	if err := c2.copyFrames(muxStream(entry{1, t1, "b\n"}, entry{1, t1, "c\n"}, entry{2, t1.Add(time.Second), "d\n"}), c2.cur); err != nil {
		t.Fatal(err)
	}
	c2.close()
	if got := readLog(t, dir, driver.StdoutFile); got != "a\nb\nc\n" {
		t.Errorf("stdout = %q, want a b c once each", got)
	}
	if got := readLog(t, dir, driver.StderrFile); got != "d\n" {
		t.Errorf("stderr = %q", got)
	}

	// Another container (a restart in place) does not inherit the cursor.
	c3 := newTestCopier(t, dir, "c2")
	if !c3.cur.Time.IsZero() || c3.cur.Container != "c2" {
		t.Errorf("cursor of a new container %+v", c3.cur)
	}
	c3.close()
}
