package kv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	execWithFileLimit() // as a helper process, never returns
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fakeClock is a settable clock for deterministic expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

type testEnv struct {
	t     *testing.T
	srv   *Server
	addr  string
	clock *fakeClock
	rdb   *redis.Client
}

// testLogger sends the server's log lines to the test log.
func testLogger(t *testing.T) *log.Logger {
	return log.New(testWriter{t}, "", 0)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startServer serves a new Server on a random 127.0.0.1 port with a fake
// clock and returns a RESP2 go-redis client for it; both are closed when
// the test ends.
func startServer(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	clock := newFakeClock()
	cfg := DefaultConfig()
	cfg.Clock = clock
	cfg.Logger = testLogger(t)
	cfg.ActiveExpireHz = 0
	cfg.BaseMemory = 0 // the estimates alone: a test's limits are in keys' bytes
	// KV_TEST_NO_IOURING=1 runs the tests with the event loops' plain
	// read(2) and write(2)
	cfg.NoIOURing = os.Getenv("KV_TEST_NO_IOURING") != ""
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	env := &testEnv{t: t, srv: srv, addr: ln.Addr().String(), clock: clock}
	env.rdb = env.client(2)
	t.Cleanup(func() {
		if t.Failed() {
			// a peer that hung (a loop stuck on a shard) would hang
			// Close too: the test has failed already
			ln.Close()
			return
		}
		srv.Close()
		<-done
	})
	return env
}

func (e *testEnv) client(proto int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, Protocol: proto, DisableIdentity: true,
		// 30 s: a heavy command (PFSELFTEST) takes seconds under -race on a loaded machine
		Password: "", MaxRetries: -1, PoolSize: 4, ReadTimeout: 30 * time.Second})
	e.t.Cleanup(func() { c.Close() })
	return c
}

// step is one command of a scripted test and the reply it must get: the
// reply formatted with fmt.Sprint (lists as [a b c]), "nil" for a null
// reply, "ERR:<prefix>" for an error starting with prefix, "*" for any
// non-error reply, "sorted:[...]" to compare an array ignoring order.
type step struct {
	cmd  string
	want string
}

func (e *testEnv) run(steps []step) {
	e.t.Helper()
	e.runWith(e.rdb, steps)
}

func (e *testEnv) runWith(c *redis.Client, steps []step) {
	e.t.Helper()
	ctx := context.Background()
	for i, s := range steps {
		args := splitArgs(s.cmd)
		res, err := c.Do(ctx, args...).Result()
		got := format(res, err)
		want := s.want
		switch {
		case strings.HasPrefix(want, "ERR:"):
			if err == nil || errors.Is(err, redis.Nil) || !strings.HasPrefix(err.Error(), want[4:]) {
				e.t.Errorf("step %d %q: got %s, want error %q", i, s.cmd, got, want[4:])
			}
		case want == "*":
			if err != nil && !errors.Is(err, redis.Nil) {
				e.t.Errorf("step %d %q: got error %v", i, s.cmd, err)
			}
		case strings.HasPrefix(want, "sorted:"):
			if sortedFormat(res) != want[7:] || err != nil {
				e.t.Errorf("step %d %q: got %s (sorted %s), want %s", i, s.cmd, got, sortedFormat(res), want[7:])
			}
		default:
			if got != want {
				e.t.Errorf("step %d %q: got %s, want %s", i, s.cmd, got, want)
			}
		}
	}
}

func splitArgs(s string) []any {
	var out []any
	for _, f := range strings.Fields(s) {
		if f == `""` {
			f = ""
		}
		out = append(out, f)
	}
	return out
}

func format(res any, err error) string {
	if errors.Is(err, redis.Nil) {
		return "nil"
	}
	if err != nil {
		return "ERR(" + err.Error() + ")"
	}
	switch v := res.(type) {
	case nil:
		return "nil"
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = format(x, nil)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[any]any:
		var parts []string
		for k, x := range v {
			parts = append(parts, format(k, nil)+":"+format(x, nil))
		}
		sort.Strings(parts)
		return "map[" + strings.Join(parts, " ") + "]"
	case redis.Error:
		return "ERR(" + v.Error() + ")"
	}
	return fmt.Sprint(res)
}

func sortedFormat(res any) string {
	v, ok := res.([]any)
	if !ok {
		return format(res, nil)
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = format(x, nil)
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

// rawConn is a plain TCP connection for byte-level protocol tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func (e *testEnv) raw() *rawConn {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &rawConn{t: e.t, nc: nc}
}

// roundTrip sends req and reads until the reply has want's length.
func (r *rawConn) roundTrip(req, want string) {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(req)); err != nil {
		r.t.Fatal(err)
	}
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r.nc, buf); err != nil {
		r.t.Fatalf("%q: read: %v (got %q)", req, err, buf)
	}
	if string(buf) != want {
		r.t.Errorf("%q: got %q, want %q", req, buf, want)
	}
}

func formatInt(n int64) string { return fmt.Sprint(n) }

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

func atoi(v any) int {
	var n int
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

var buildDir string

func tempDirForBuild() (string, error) {
	d, err := os.MkdirTemp("", "gantry-kv-test")
	buildDir = d
	return d, err
}

// syncStream attaches to the server's replication stream as a replica
// does (SYNC), skips the snapshot and returns the stream that follows.
func (e *testEnv) syncStream() *bufio.Reader {
	e.t.Helper()
	r := e.raw()
	if _, err := r.nc.Write([]byte("SYNC\r\n")); err != nil {
		e.t.Fatal(err)
	}
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(r.nc)
	var size int
	for { // the payload's header, after newlines the primary may send first
		line, err := br.ReadString('\n')
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.HasPrefix(line, "$") {
			size, _ = strconv.Atoi(strings.TrimSpace(line[1:]))
			break
		}
	}
	if _, err := br.Discard(size); err != nil {
		e.t.Fatal(err)
	}
	return br
}

// loopModes are the two ways a peer serves its clients, for tests that
// run in both: on event loops (the default) and on a goroutine each.
var loopModes = []struct {
	name string
	n    int // Config.EventLoops
}{{"event loops", 0}, {"goroutines", -1}}
