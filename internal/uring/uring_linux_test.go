//go:build linux

package uring

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

func newRing(t *testing.T, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries)
	if err != nil {
		t.Skip("io_uring not available:", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// socketPairs returns k non-blocking stream socket pairs.
func socketPairs(t *testing.T, k int) (a, b []int) {
	t.Helper()
	for i := 0; i < k; i++ {
		p, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		a, b = append(a, p[0]), append(b, p[1])
	}
	t.Cleanup(func() {
		for i := range a {
			syscall.Close(a[i])
			syscall.Close(b[i])
		}
	})
	return a, b
}

func TestSendRecvBatch(t *testing.T) {
	r := newRing(t, 4) // smaller than the batch: Do splits it
	a, b := socketPairs(t, 10)
	ops := make([]Op, len(a))
	for i := range ops {
		ops[i] = Op{Kind: Send, FD: a[i], Buf: []byte{'m', byte('0' + i)}}
	}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	for i, o := range ops {
		if o.Err != nil || o.N != 2 {
			t.Fatalf("send %d: n=%d err=%v", i, o.N, o.Err)
		}
	}
	for i := range ops {
		ops[i] = Op{Kind: Recv, FD: b[i], Buf: make([]byte, 16)}
	}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	for i, o := range ops {
		if o.Err != nil || string(o.Buf[:o.N]) != string([]byte{'m', byte('0' + i)}) {
			t.Fatalf("recv %d: %q err=%v", i, o.Buf[:max(o.N, 0)], o.Err)
		}
	}
}

// A receive on an empty socket completes with EAGAIN within the enter that
// submitted it (MSG_DONTWAIT): the kernel keeps no buffer afterwards. Do
// reports ErrBroken otherwise.
func TestRecvEmptyIsEAGAINInline(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPairs(t, 3)
	if _, err := syscall.Write(a[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	ops := []Op{
		{Kind: Recv, FD: b[0], Buf: make([]byte, 8)},
		{Kind: Recv, FD: b[1], Buf: make([]byte, 8)},
		{Kind: Recv, FD: b[2], Buf: make([]byte, 8)},
	}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ops[0].Err, syscall.EAGAIN) || !errors.Is(ops[2].Err, syscall.EAGAIN) {
		t.Fatalf("empty sockets: %v %v, want EAGAIN", ops[0].Err, ops[2].Err)
	}
	if ops[1].Err != nil || string(ops[1].Buf[:ops[1].N]) != "x" {
		t.Fatalf("full socket: n=%d err=%v", ops[1].N, ops[1].Err)
	}
	// nothing arrives later into the CQ ring either
	if n := r.reap(nil); n != 0 {
		t.Fatalf("%d late completions", n)
	}
	// data sent now is not taken by a receive the kernel kept
	if _, err := syscall.Write(a[0], []byte("late")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := syscall.Read(b[0], buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read after: %q %v", buf[:max(n, 0)], err)
	}
}

// A send to a full socket takes what fits (a partial write) and then
// reports EAGAIN, as write(2) on a non-blocking socket does.
func TestSendFullSocket(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPairs(t, 2)
	if err := syscall.SetsockoptInt(a[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("y"), 1<<20)
	ops := []Op{{Kind: Send, FD: a[0], Buf: big}, {Kind: Send, FD: a[1], Buf: []byte("ok")}}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	if ops[0].Err != nil || ops[0].N <= 0 || ops[0].N >= len(big) {
		t.Fatalf("first send to a small buffer: n=%d err=%v, want a partial write", ops[0].N, ops[0].Err)
	}
	if ops[1].Err != nil || ops[1].N != 2 {
		t.Fatalf("second socket: n=%d err=%v", ops[1].N, ops[1].Err)
	}
	sent := ops[0].N
	ops = ops[:1]
	ops[0] = Op{Kind: Send, FD: a[0], Buf: big[sent:]}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ops[0].Err, syscall.EAGAIN) {
		t.Fatalf("send to a full socket: n=%d err=%v, want EAGAIN", ops[0].N, ops[0].Err)
	}
	// what the partial write took arrives, nothing more
	got := 0
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(b[0], buf)
		if n <= 0 {
			if !errors.Is(err, syscall.EAGAIN) {
				t.Fatal(err)
			}
			break
		}
		got += n
	}
	if got != sent {
		t.Fatalf("received %d bytes, the send reported %d", got, sent)
	}
}

// A closed peer: the send fails with EPIPE (and no SIGPIPE kills the
// test: MSG_NOSIGNAL), the receive returns 0 (end of stream).
func TestClosedPeer(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPairs(t, 2)
	syscall.Close(b[0])
	b[0] = -1
	syscall.Close(a[1])
	a[1] = -1
	ops := []Op{{Kind: Send, FD: a[0], Buf: []byte("x")}, {Kind: Recv, FD: b[1], Buf: make([]byte, 8)}}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ops[0].Err, syscall.EPIPE) {
		t.Fatalf("send to a closed peer: n=%d err=%v, want EPIPE", ops[0].N, ops[0].Err)
	}
	if ops[1].Err != nil || ops[1].N != 0 {
		t.Fatalf("recv from a closed peer: n=%d err=%v, want 0", ops[1].N, ops[1].Err)
	}
	// a bad descriptor fails its own op only
	ops = []Op{{Kind: Recv, FD: 1 << 20, Buf: make([]byte, 8)}, {Kind: Send, FD: a[0], Buf: []byte("x")}}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ops[0].Err, syscall.EBADF) || !errors.Is(ops[1].Err, syscall.EPIPE) {
		t.Fatalf("bad fd: %v, then %v", ops[0].Err, ops[1].Err)
	}
}

func TestSetupRefused(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.ENOSYS, syscall.EPERM} {
		old := Setup
		Setup = func(uint32, *Params) (int, error) { return -1, e }
		r, err := New(8)
		Setup = old
		if r != nil || !errors.Is(err, e) {
			t.Fatalf("refused with %v: ring %v, err %v", e, r, err)
		}
	}
}
