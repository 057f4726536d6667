package kv

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResizeQuery checks the cron's rule (Redis's
// clientsCronResizeQueryBuffer) on a bare client: which buffers shrink, to
// what size, with the held input kept and the new sizes published.
func TestResizeQuery(t *testing.T) {
	const idle = 2001 // ms, just over idleRelease
	cases := []struct {
		name              string
		size, held, peak  int
		idleMs            int64
		wantSize, wantCap int // len(rbuf) after, and what CLIENT LIST reads
		wantPeak          int
	}{
		{"busy small buffer kept", readBufSize, 0, 100, 0, readBufSize, readBufSize, 0},
		{"idle empty buffer released", readBufSize, 0, 0, idle, 0, 0, 0},
		{"idle buffer keeps its input", 64 << 10, 1000, 1000, idle, 1000, 1000, 1000},
		{"idle buffer wasting little kept", readBufSize, readBufSize - 100, 0, idle, readBufSize, readBufSize, readBufSize - 100},
		{"oversized after a big command trimmed", 450 << 10, 0, 130, 0, readBufSize, readBufSize, 0},
		{"oversized trimmed to a big peak", 450 << 10, 0, 100 << 10, 0, 100 << 10, 100 << 10, 0},
		{"oversized trimmed to the input held", 450 << 10, 80 << 10, 130, 0, 80 << 10, 80 << 10, 80 << 10},
		{"peak over half kept", 450 << 10, 0, 300 << 10, 0, 450 << 10, 450 << 10, 0},
		{"under the resize threshold kept", 30 << 10, 0, 0, 0, 30 << 10, 30 << 10, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{srv: &Server{}}
			c.rbuf = make([]byte, tc.size)
			for i := range tc.held {
				c.rbuf[i] = byte('a' + i%26)
			}
			want := bytes.Clone(c.rbuf[:tc.held])
			c.rend, c.qpeak = tc.held, tc.peak
			c.resizeQuery(tc.idleMs)
			if len(c.rbuf) != tc.wantSize {
				t.Errorf("buffer %d bytes, want %d", len(c.rbuf), tc.wantSize)
			}
			if got := c.rbuf[c.rstart:c.rend]; !bytes.Equal(got, want) {
				t.Errorf("held input changed: %d bytes, want %d", len(got), len(want))
			}
			if got := c.shared.qbufSize.Load(); got != int64(tc.wantCap) {
				t.Errorf("published size %d, want %d", got, tc.wantCap)
			}
			if got := c.shared.qbuf.Load(); got != int64(tc.held) {
				t.Errorf("published qbuf %d, want %d", got, tc.held)
			}
			if c.qpeak != tc.wantPeak {
				t.Errorf("peak %d after the cron, want %d", c.qpeak, tc.wantPeak)
			}
		})
	}
}

// queryBufOf reads qbuf and qbuf-free of the client named name from
// another connection's CLIENT LIST.
func queryBufOf(t *testing.T, e *testEnv, name string) (qbuf, free int) {
	t.Helper()
	list, err := e.rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`qbuf=(\d+) qbuf-free=(\d+)`)
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") {
			m := re.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("no qbuf in %q", line)
			}
			qbuf, _ = strconv.Atoi(m[1])
			free, _ = strconv.Atoi(m[2])
			return qbuf, free
		}
	}
	t.Fatalf("no client %s in %q", name, list)
	return 0, 0
}

// waitQueryBuf polls another client's CLIENT LIST view of name until ok.
func waitQueryBuf(t *testing.T, e *testEnv, name, what string, ok func(qbuf, free int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, f := queryBufOf(t, e, name)
		if ok(q, f) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: qbuf=%d qbuf-free=%d", what, q, f)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientListQueryBuffer checks what another client's CLIENT LIST
// shows of a client's query buffer: the part of a command received so
// far, a buffer grown by a big command, and its release after the client
// stayed idle, with event loops and with a goroutine per connection.
func TestClientListQueryBuffer(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run("loops="+strconv.Itoa(loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			r := e.raw()
			r.roundTrip("CLIENT SETNAME qb\r\n", "+OK\r\n")
			waitQueryBuf(t, e, "qb", "a fresh client's buffer", func(q, f int) bool {
				return q == 0 && q+f == readBufSize
			})

			// half of a 100000-byte value: held, and the buffer holds it
			head := "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$100000\r\n"
			part := head + strings.Repeat("A", 50000)
			if _, err := r.nc.Write([]byte(part)); err != nil {
				t.Fatal(err)
			}
			waitQueryBuf(t, e, "qb", "a partial command", func(q, f int) bool {
				return q == len(part) && q+f >= len(part)
			})
			r.roundTrip(strings.Repeat("A", 50000)+"\r\n", "+OK\r\n")
			if loops < 0 {
				return // goroutines have no cron: the rest is the loop's
			}
			// the cron trims the buffer to a read's worth: its peak was 0
			waitQueryBuf(t, e, "qb", "trimmed by the cron", func(q, f int) bool {
				return q == 0 && q+f == readBufSize
			})
			e.clock.Advance(3 * time.Second) // idle: the cron releases it
			waitQueryBuf(t, e, "qb", "released when idle", func(q, f int) bool {
				return q == 0 && f == 0
			})
			r.roundTrip("PING\r\n", "+PONG\r\n") // and it comes back
			waitQueryBuf(t, e, "qb", "back after a read", func(q, f int) bool {
				return q+f == readBufSize
			})
		})
	}
}
