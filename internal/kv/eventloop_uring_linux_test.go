//go:build linux

package kv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/uring"
)

func needRing(t *testing.T) {
	t.Helper()
	r, err := uring.New(8)
	if err != nil {
		t.Skip("io_uring not available:", err)
	}
	r.Close()
}

// batches returns how many read and write batches the loops sent through
// io_uring.
func batches(s *Server) (reads, writes int64) {
	for _, l := range s.loops {
		reads += l.batchReads.Load()
		writes += l.batchWrites.Load()
	}
	return reads, writes
}

// clientsTakingTurns runs n clients at once, each sending rounds
// pipelines of INCRs on its own key and checking every reply, so that
// the loop finds several clients ready per iteration.
func clientsTakingTurns(t *testing.T, addr string, n, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			key := fmt.Sprintf("ctr%d", i)
			for r := 0; r < rounds; r++ {
				depth := 1 + r%3
				req := strings.Repeat("INCR "+key+"\r\n", depth)
				if _, err := nc.Write([]byte(req)); err != nil {
					errs <- err
					return
				}
				nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				for d := 0; d < depth; d++ {
					got, err := readRESP(br)
					want := fmt.Sprintf(":%d\r\n", sumDepth(r)+d+1)
					if err != nil || got != want {
						errs <- fmt.Errorf("client %d round %d: %q %w, want %q", i, r, got, err, want)
						return
					}
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// sumDepth is how many INCRs rounds before r sent (depths 1, 2, 3, 1, ...).
func sumDepth(r int) int {
	s := 0
	for i := 0; i < r; i++ {
		s += 1 + i%3
	}
	return s
}

// Clients served together have their reads and their replies batched
// through io_uring, with the same replies as read(2) and write(2) give;
// with NoIOURing nothing goes through it.
func TestEventLoopURingBatches(t *testing.T) {
	needRing(t)
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoIOURing=%v", off), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = 1; c.NoIOURing = off })
			clientsTakingTurns(t, e.addr, 16, 150)
			r, w := batches(e.srv)
			if off && (r != 0 || w != 0) {
				t.Fatalf("io_uring off: %d read and %d write batches", r, w)
			}
			if !off && (r == 0 || w == 0) {
				t.Fatalf("io_uring on: %d read and %d write batches, want some of each", r, w)
			}
		})
	}
}

// Big replies to several clients at once: the batched sends write part
// of them, the rest goes out through EPOLLOUT as with write(2), and every
// byte arrives in order.
func TestEventLoopURingPartialWrites(t *testing.T) {
	needRing(t)
	e := startServer(t, func(c *Config) { c.EventLoops = 1; c.NoIOURing = false; c.EnableDebugCommand = "yes" })
	val := bytes.Repeat([]byte("0123456789abcdef"), 5<<16) // 5 MiB: more than a socket buffer takes
	if err := e.rdb.Set(context.Background(), "big", val, 0).Err(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("$%d\r\n%s\r\n", len(val), val)
	const n = 6
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.(*net.TCPConn).SetReadBuffer(32 << 10)
		conns[i] = nc
	}
	sleeper := e.raw()
	for round := 0; round < 2; round++ {
		// all ask while the loop sleeps: it finds them ready together
		if _, err := sleeper.nc.Write([]byte("DEBUG SLEEP 0.2\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		for _, nc := range conns {
			if _, err := nc.Write([]byte("GET big\r\nPING\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		sleeper.roundTrip("", "+OK\r\n")
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, nc := range conns {
			wg.Add(1)
			go func(i int, nc net.Conn) {
				defer wg.Done()
				nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				buf := make([]byte, len(want)+len("+PONG\r\n"))
				if _, err := io.ReadFull(nc, buf); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if string(buf) != want+"+PONG\r\n" {
					errs <- fmt.Errorf("client %d: reply differs", i)
				}
			}(i, nc)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	if _, w := batches(e.srv); w == 0 {
		t.Fatal("no write batch")
	}
}

// Clients that send and close at once, among clients that stay: the
// batch reads their commands or their end of stream, closes them as
// read(2) would have, and the others keep being served.
func TestEventLoopURingClosedClients(t *testing.T) {
	needRing(t)
	e := startServer(t, func(c *Config) { c.EventLoops = 1; c.NoIOURing = false })
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := net.Dial("tcp", e.addr)
				if err != nil {
					return
				}
				nc.Write([]byte("INCR gone\r\nGET big\r\n"))
				if i%2 == 0 { // reset instead of FIN
					nc.(*net.TCPConn).SetLinger(0)
				}
				nc.Close()
			}()
		}
		clientsTakingTurns(t, e.addr, 4, 3)
		wg.Wait()
		if err := e.rdb.Del(context.Background(), "ctr0", "ctr1", "ctr2", "ctr3").Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := e.rdb.Get(context.Background(), "gone").Int()
		if err == nil && n == 160 || time.Now().After(deadline) {
			// every INCR that arrived ran once: the closes lose none
			if n != 160 {
				t.Fatalf("gone = %d %v, want 160", n, err)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Where io_uring_setup is refused (an old kernel: ENOSYS; a container's
// seccomp profile or kernel.io_uring_disabled: EPERM) the loops serve
// with read(2) and write(2) after one log line.
func TestEventLoopURingRefused(t *testing.T) {
	old := newRing
	t.Cleanup(func() { newRing = old })
	for _, refuse := range []syscall.Errno{syscall.ENOSYS, syscall.EPERM} {
		t.Run(refuse.Error(), func(t *testing.T) {
			calls := 0
			newRing = func() (batchRing, error) {
				calls++
				uring.Setup = func(uint32, *uring.Params) (int, error) { return -1, refuse }
				defer func() { uring.Setup = setupCall }()
				return old() // with the refusing setup
			}
			var logs syncBuf
			e := startServer(t, func(c *Config) { c.EventLoops = 2; c.NoIOURing = false; c.Logger = log.New(&logs, "", 0) })
			clientsTakingTurns(t, e.addr, 8, 30)
			if r, w := batches(e.srv); r != 0 || w != 0 {
				t.Fatalf("%d read and %d write batches without a ring", r, w)
			}
			if calls != 1 || strings.Count(logs.String(), "io_uring unavailable") != 1 || !strings.Contains(logs.String(), refuse.Error()) {
				t.Fatalf("setup tried %d times (want 1, the other loops alike), log %q", calls, logs.String())
			}
		})
	}
}

var setupCall = uring.Setup

// brokenRing runs the batch for real, then reports the first request as
// still held by the kernel (uring.ErrBroken with Lost), as a kernel that
// kept a request would.
type brokenRing struct {
	batchRing
	broke *atomic.Bool
}

func (b brokenRing) Do(ops []uring.Op) error {
	if err := b.batchRing.Do(ops); err != nil {
		return err
	}
	ops[0].N, ops[0].Err, ops[0].Lost = 0, uring.ErrBroken, true
	b.broke.Store(true)
	return uring.ErrBroken
}

// A ring that breaks: the client whose buffer the kernel may hold is
// closed, the loop logs once and serves everyone else with read(2) and
// write(2) from then on.
func TestEventLoopURingBroken(t *testing.T) {
	needRing(t)
	old := newRing
	t.Cleanup(func() { newRing = old })
	var broke atomic.Bool
	newRing = func() (batchRing, error) {
		r, err := old()
		if err != nil {
			return nil, err
		}
		return brokenRing{r, &broke}, nil
	}
	var logs syncBuf
	e := startServer(t, func(c *Config) {
		c.EventLoops = 1
		c.NoIOURing = false
		c.EnableDebugCommand = "yes"
		c.Logger = log.New(&logs, "", 0)
	})
	sleeper := e.raw()
	if _, err := sleeper.nc.Write([]byte("DEBUG SLEEP 0.2\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	conns := make([]net.Conn, 4)
	for i := range conns {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	time.Sleep(20 * time.Millisecond) // the loop adds them after its sleep
	sleeper.roundTrip("", "+OK\r\n")
	if _, err := sleeper.nc.Write([]byte("DEBUG SLEEP 0.2\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, nc := range conns {
		if _, err := nc.Write([]byte("INCR n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	sleeper.roundTrip("", "+OK\r\n")
	closed, served := 0, 0
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if v, err := readRESP(bufio.NewReader(nc)); err != nil {
			closed++
		} else if strings.HasPrefix(v, ":") {
			served++
		}
	}
	if !broke.Load() {
		t.Fatal("no batch: the ring never broke")
	}
	if closed != 1 || served != 3 {
		t.Fatalf("%d clients closed and %d served, want 1 and 3", closed, served)
	}
	// from now on read and write: many clients at once, and no batch
	clientsTakingTurns(t, e.addr, 8, 30)
	if n := strings.Count(logs.String(), "io_uring"); n != 1 {
		t.Fatalf("%d log lines on io_uring, want 1: %q", n, logs.String())
	}
}
