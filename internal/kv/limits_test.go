package kv

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// infoField returns a field of INFO.
func (e *testEnv) infoField(name string) string {
	e.t.Helper()
	info, err := e.rdb.Info(context.Background(), "everything").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return v
		}
	}
	e.t.Fatalf("INFO has no %s", name)
	return ""
}

func (e *testEnv) setConfig(name, val string) {
	e.t.Helper()
	if err := e.rdb.ConfigSet(context.Background(), name, val).Err(); err != nil {
		e.t.Fatalf("CONFIG SET %s %q: %v", name, val, err)
	}
}

// waitUntil polls cond until it holds; the deadline only keeps a broken
// build from hanging, no test asserts how long anything takes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLine reads one reply line (without CRLF) from nc.
func readLine(t *testing.T, nc net.Conn) (string, error) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// closedByServer reports whether the server closed nc (a read gets EOF
// or a reset rather than data or a timeout).
func closedByServer(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	for {
		_, err := nc.Read(b[:])
		if err == nil {
			continue // replies sent before the close
		}
		var ne net.Error
		return !errors.As(err, &ne) || !ne.Timeout()
	}
}

// readUntilClosed reads nc until the server closes it (closed) or 10 s
// pass; got is how many bytes arrived before.
func readUntilClosed(nc net.Conn) (got int, closed bool) {
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64<<10)
	for {
		n, err := nc.Read(b)
		got += n
		if err != nil {
			var ne net.Error
			return got, !errors.As(err, &ne) || !ne.Timeout()
		}
	}
}

// flakyListener fails its first accepts with EMFILE, as accept4 does when
// the process is out of descriptors.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptOutOfDescriptors: an accept that fails with EMFILE (issue 13:
// 300 connections under ulimit -n 256 made Serve return and the peer exit)
// is retried after a pause; the server keeps serving.
func TestAcceptOutOfDescriptors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = testLogger(t)
	cfg.ActiveExpireHz = 0
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner}
	ln.fails.Store(5)
	var serveErr error
	served := make(chan struct{})
	go func() {
		serveErr = srv.Serve(ln)
		close(served)
	}()
	defer func() {
		srv.Close()
		<-served
	}()
	nc, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
		t.Fatalf("Serve returned on EMFILE: %v", serveErr)
	default:
	}
	if line, err := readLine(t, nc); err != nil || line != "+PONG" {
		t.Fatalf("after EMFILE: %q %v, want +PONG", line, err)
	}
	if n := ln.fails.Load(); n >= 0 {
		t.Fatalf("%d injected failures left", n+1)
	}
	srv.Close()
	<-served
	if !errors.Is(serveErr, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", serveErr)
	}
}

// TestMaxClients: past maxclients a connection gets Redis's error and is
// closed; the others are served, and a slot freed is taken again.
func TestMaxClients(t *testing.T) {
	env := startServer(t, func(c *Config) { c.MaxClients = 3 })
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		nc, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte("PING\r\n"))
		if line, err := readLine(t, nc); line != "+PONG" {
			t.Fatalf("client %d: %q %v", i, line, err)
		}
		conns = append(conns, nc)
	}
	extra, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if line, _ := readLine(t, extra); line != "-ERR max number of clients reached" {
		t.Fatalf("client over maxclients: %q", line)
	}
	if !closedByServer(extra) {
		t.Fatal("the refused client was not closed")
	}
	conns[0].Close()
	waitUntil(t, "a slot freed", func() bool { return env.srv.numClients() < 3 })
	if v := env.infoField("rejected_connections"); v != "1" {
		t.Errorf("rejected_connections %s, want 1", v)
	}
	if v := env.infoField("maxclients"); v != "3" {
		t.Errorf("maxclients %s, want 3", v)
	}
}

// TestUnauthenticatedCaps: with a password set, a client that has not
// authenticated may not announce more than 10 arguments or a bulk string
// over 16384 bytes (issue 13: "*1\r\n$536870000\r\n..." grew the server by
// a gigabyte); the server answers Redis's error and closes at the header,
// before reading the payload. After AUTH the caps are gone.
func TestUnauthenticatedCaps(t *testing.T) {
	env := startServer(t, func(c *Config) { c.RequirePass = "pw" })
	for _, tt := range []struct{ req, want string }{
		{"*1\r\n$536870000\r\n", "-ERR Protocol error: unauthenticated bulk length"},
		{"*11\r\n", "-ERR Protocol error: unauthenticated multibulk length"},
		{"*2\r\n$4\r\nAUTH\r\n$16385\r\n", "-ERR Protocol error: unauthenticated bulk length"},
	} {
		nc, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte(tt.req))
		if line, err := readLine(t, nc); line != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.req, line, err, tt.want)
		}
		if !closedByServer(nc) {
			t.Errorf("%q: not closed", tt.req)
		}
	}
	// AUTH and a 20 KB value in one pipeline: the caps end with AUTH
	r := env.raw()
	big := strings.Repeat("v", 20000)
	r.roundTrip("AUTH pw\r\n"+string(cmdBytes("SET", "k", big))+string(cmdBytes("STRLEN", "k")), "+OK\r\n+OK\r\n:20000\r\n")
}

// TestProtoMaxBulkLen: CONFIG SET proto-max-bulk-len refuses longer bulk
// strings with Redis's protocol error.
func TestProtoMaxBulkLen(t *testing.T) {
	env := startServer(t, nil)
	env.run([]step{
		{"CONFIG SET proto-max-bulk-len 1mb", "OK"},
		{"CONFIG GET proto-max-bulk-len", "[proto-max-bulk-len 1048576]"},
		{"CONFIG SET proto-max-bulk-len 1000", "ERR:ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 536870912 inclusive"},
	})
	r := env.raw()
	r.roundTrip("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n", "-ERR Protocol error: invalid bulk length\r\n")
	if !closedByServer(r.nc) {
		t.Error("not closed after the protocol error")
	}
}

// TestQueryBufferLimit: a client holding more input than
// client-query-buffer-limit (unparsed bytes, or a transaction's queued
// commands) is closed.
func TestQueryBufferLimit(t *testing.T) {
	env := startServer(t, nil)
	env.run([]step{{"CONFIG SET client-query-buffer-limit 1mb", "OK"}})
	for name, send := range map[string]func(w io.Writer){
		"bulk": func(w io.Writer) {
			w.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n"))
			w.Write(make([]byte, 2<<20))
		},
		"multi": func(w io.Writer) {
			w.Write([]byte("MULTI\r\n"))
			val := strings.Repeat("v", 100000)
			for i := 0; i < 20; i++ {
				w.Write(cmdBytes("SET", "k", val))
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := atoi(env.infoField("client_query_buffer_limit_disconnections"))
			nc, err := net.Dial("tcp", env.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			go send(nc) // fails once the server closes
			if !closedByServer(nc) {
				t.Fatal("not closed")
			}
			if after := atoi(env.infoField("client_query_buffer_limit_disconnections")); after != before+1 {
				t.Errorf("client_query_buffer_limit_disconnections %d, want %d", after, before+1)
			}
		})
	}
	env.run([]step{{"EXISTS k", "0"}})
}

// TestOutputHardLimit: a client that pipelines GETs of a big value and
// never reads is closed when its unsent replies pass the hard limit of
// client-output-buffer-limit.
func TestOutputHardLimit(t *testing.T) {
	env := startServer(t, nil)
	env.setConfig("client-output-buffer-limit", "normal 1mb 0 0")
	env.run([]step{
		{"CONFIG GET client-output-buffer-limit", "[client-output-buffer-limit normal 1048576 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60]"},
	})
	if err := env.rdb.Set(context.Background(), "big", strings.Repeat("x", 100<<10), 0).Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go nc.Write([]byte(strings.Repeat("GET big\r\n", 2000))) // never read
	waitUntil(t, "the client is closed", func() bool {
		return env.infoField("client_output_buffer_limit_disconnections") == "1"
	})
	waitUntil(t, "the client is gone", func() bool { return env.srv.numClients() == 1 })
}

// TestOutputSoftLimit: a client whose unsent replies stay over the soft
// limit for longer than its seconds is closed (the server's clock is
// fake: the test moves it).
func TestOutputSoftLimit(t *testing.T) {
	env := startServer(t, nil)
	env.setConfig("client-output-buffer-limit", "normal 0 256kb 10")
	if err := env.rdb.Set(context.Background(), "big", strings.Repeat("x", 100<<10), 0).Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go nc.Write([]byte(strings.Repeat("GET big\r\n", 2000))) // never read
	// the server stops running its GETs once its socket is full
	last := -10
	waitUntil(t, "the client's commands stop", func() bool {
		n := atoi(env.infoField("total_commands_processed"))
		same := n-last <= 1 // the INFO itself
		last = n
		time.Sleep(100 * time.Millisecond)
		return same
	})
	if v := env.infoField("client_output_buffer_limit_disconnections"); v != "0" {
		t.Fatalf("closed before the soft limit's seconds: %s", v)
	}
	env.clock.Advance(11 * time.Second)
	waitUntil(t, "the client is closed", func() bool {
		return env.infoField("client_output_buffer_limit_disconnections") == "1"
	})
}

// TestIdleTimeout: CONFIG SET timeout closes clients idle longer (the
// server's clock is fake: the test moves it).
func TestIdleTimeout(t *testing.T) {
	env := startServer(t, nil)
	env.run([]step{{"CONFIG SET timeout 10", "OK"}, {"CONFIG GET timeout", "[timeout 10]"}})
	r := env.raw()
	r.roundTrip("PING\r\n", "+PONG\r\n")
	env.clock.Advance(5 * time.Second)
	r.roundTrip("PING\r\n", "+PONG\r\n") // active: not idle
	env.clock.Advance(9 * time.Second)
	time.Sleep(3 * cronPeriod)
	r.roundTrip("PING\r\n", "+PONG\r\n")
	env.clock.Advance(11 * time.Second)
	if !closedByServer(r.nc) {
		t.Fatal("idle client not closed")
	}
}

// TestIdleTimeoutGoroutines: clients served by goroutines (--cpus 0) are
// closed by a read deadline.
func TestIdleTimeoutGoroutines(t *testing.T) {
	env := startServer(t, func(c *Config) { c.EventLoops = -1; c.Timeout = time.Second })
	r := env.raw()
	r.roundTrip("PING\r\n", "+PONG\r\n")
	if !closedByServer(r.nc) {
		t.Fatal("idle client not closed")
	}
}

// TestOutputBackpressure: with no output limit (Redis's default for normal
// clients) a client that pipelines and never reads is not closed, but the
// server runs its commands only as fast as it reads the replies, so what
// it holds for the client stays small; the client's commands all run once
// it reads.
func TestOutputBackpressure(t *testing.T) {
	env := startServer(t, nil)
	if err := env.rdb.Set(context.Background(), "big", strings.Repeat("x", 100<<10), 0).Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 500
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc.Write([]byte(strings.Repeat("GET big\r\n", n) + "PING\r\n"))
	}()
	time.Sleep(200 * time.Millisecond) // let the socket fill
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	want := int64(n*(len("$102400\r\n")+100<<10+2) + len("+PONG\r\n"))
	got, err := io.CopyN(io.Discard, nc, want)
	if err != nil {
		t.Fatalf("read %d of %d bytes: %v", got, want, err)
	}
	wg.Wait()
}
