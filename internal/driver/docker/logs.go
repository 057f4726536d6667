package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/durable"
)

// logChunk is the size of the copy buffers: the log stream is read frame
// by frame through one, so a task's output costs the agent this much
// memory however long its lines are. A copier takes a buffer from
// frameBufs only while it copies a frame and waits for the next frame's
// header without one: a node of idle containers holds none.
const logChunk = 32 << 10

var frameBufs = sync.Pool{New: func() any { b := make([]byte, logChunk); return &b }}

// cursor is how far a container's log stream has been copied: the
// daemon's timestamp of the last entry written and how many entries with
// exactly that timestamp were written. The daemon's "since" filter is
// inclusive, so a resumed stream starts at that timestamp and skips Count
// entries: nothing is written twice, nothing skipped.
type cursor struct {
	Container string    `json:"container"`
	Time      time.Time `json:"time"`
	Count     int       `json:"count"`
}

// logCopier copies one container's log stream into the task's rotated
// stdout and stderr logs. One goroutine at a time runs copyStream; the
// cursor is also saved from a timer, hence mu.
type logCopier struct {
	cli      *client.Client
	dir      string
	log      *slog.Logger
	interval time.Duration
	out      [2]*tasklog.Writer // stdout, stderr
	failing  bool               // writes are failing (a full disk); noted once per run

	mu    sync.Mutex
	cur   cursor      // guarded by mu
	dirty bool        // guarded by mu: cur is newer than the file
	timer *time.Timer // guarded by mu: pending save
}

// openLogs opens the task's logs and the saved cursor of containerID (a
// cursor of another container, an earlier run's, starts from the top).
func openLogs(cli *client.Client, cfg *driver.TaskConfig, containerID string, interval time.Duration, log *slog.Logger) (*logCopier, error) {
	lc := cfg.Logs.WithDefaults()
	c := &logCopier{cli: cli, dir: cfg.AllocDir, log: log, interval: interval, cur: cursor{Container: containerID}}
	for i, base := range []string{driver.StdoutFile, driver.StderrFile} {
		w, err := tasklog.OpenWriter(cfg.AllocDir, base, lc.MaxFiles, int64(lc.MaxFileSizeMB)<<20)
		if err != nil {
			c.closeWriters()
			return nil, err
		}
		c.out[i] = w
	}
	if b, err := os.ReadFile(filepath.Join(cfg.AllocDir, cursorFile)); err == nil {
		var saved cursor
		if json.Unmarshal(b, &saved) == nil && saved.Container == containerID {
			c.cur = saved
		}
	}
	return c, nil
}

// copyStream copies the container's log from the cursor until the stream
// ends (with follow, when the container stops) or ctx is done.
func (c *logCopier) copyStream(ctx context.Context, follow bool) error {
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}}
	if follow {
		q.Set("follow", "1")
	}
	if !cur.Time.IsZero() {
		// The API's "since": seconds, with nanoseconds as the fraction.
		q.Set("since", fmt.Sprintf("%d.%09d", cur.Time.Unix(), cur.Time.Nanosecond()))
	}
	rc, err := openLogStream(ctx, c.cli, cur.Container, q)
	if err != nil {
		return fmt.Errorf("reading the log of container %s: %w", short(cur.Container), err)
	}
	defer rc.Close()
	if err := c.copyFrames(rc, cur); err != nil {
		return fmt.Errorf("reading the log of container %s: %w", short(cur.Container), err)
	}
	return nil
}

// copyFrames copies a multiplexed log stream (8-byte frame headers: stream
// type, 3 zero bytes, big-endian size) that starts at the cursor from, to
// its end.
func (c *logCopier) copyFrames(r io.Reader, from cursor) error {
	skip := from.Count // entries at from.Time already written
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		stream, size := hdr[0], int(binary.BigEndian.Uint32(hdr[4:]))
		if err := c.frame(r, stream, size, from.Time, &skip); err != nil {
			return err
		}
	}
}

// frame copies one log entry of size bytes: "<RFC3339Nano timestamp> <output>".
func (c *logCopier) frame(r io.Reader, stream byte, size int, since time.Time, skip *int) error {
	bp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bp)
	buf := *bp
	first := min(size, len(buf))
	if _, err := io.ReadFull(r, buf[:first]); err != nil {
		return err
	}
	if stream == 3 {
		// The daemon's own error, sent in the stream.
		return fmt.Errorf("daemon: %s", bytes.TrimSpace(buf[:first]))
	}
	var w *tasklog.Writer
	switch stream {
	case 1:
		w = c.out[0]
	case 2:
		w = c.out[1]
	}
	data := buf[:first]
	var ts time.Time
	if sp := bytes.IndexByte(data[:min(len(data), 64)], ' '); sp > 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(data[:sp])); err == nil {
			ts, data = t, data[sp+1:]
		}
	}
	drop := false
	if !ts.IsZero() && !since.IsZero() && ts.Equal(since) && *skip > 0 {
		*skip--
		drop = true
	}
	write := func(p []byte) {
		if drop || w == nil || len(p) == 0 {
			return
		}
		if _, err := w.Write(p); err != nil {
			if !c.failing {
				c.log.Warn("docker driver: task log write failed; output is dropped until writes succeed", "dir", c.dir, "err", err)
			}
			c.failing = true
			return
		}
		c.failing = false
	}
	write(data)
	for rest := size - first; rest > 0; {
		n := min(rest, len(buf))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		write(buf[:n])
		rest -= n
	}
	if !ts.IsZero() && !drop {
		c.advance(ts)
	}
	return nil
}

// advance moves the cursor past one written entry and schedules a save.
func (c *logCopier) advance(ts time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.Equal(c.cur.Time) {
		c.cur.Count++
	} else {
		c.cur.Time, c.cur.Count = ts, 1
	}
	if !c.dirty {
		c.dirty = true
		c.timer = time.AfterFunc(c.interval, c.save)
	}
}

// save writes the cursor if it moved since the last save.
func (c *logCopier) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saveLocked()
}

func (c *logCopier) saveLocked() {
	if !c.dirty {
		return
	}
	c.dirty = false
	b, _ := json.Marshal(c.cur)
	if err := durable.WriteFile(filepath.Join(c.dir, cursorFile), b, 0o644); err != nil {
		c.log.Warn("docker driver: saving the log position; a restarted agent may copy some output twice", "dir", c.dir, "err", err)
	}
}

// close saves the cursor (so a re-attached agent resumes exactly there)
// and closes the logs.
func (c *logCopier) close() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.saveLocked()
	c.mu.Unlock()
	c.closeWriters()
}

func (c *logCopier) closeWriters() {
	for i, w := range c.out {
		if w != nil {
			if err := w.Close(); err != nil {
				c.log.Warn("docker driver: closing task log", "dir", c.dir, "err", err)
			}
			c.out[i] = nil
		}
	}
}
