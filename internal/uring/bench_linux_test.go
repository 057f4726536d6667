//go:build linux

package uring

import (
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// tcpPairs returns k connected loopback TCP pairs as raw non-blocking fds
// (sender side, receiver side).
func tcpPairs(tb testing.TB, k int) (snd, rcv []int) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	for i := 0; i < k; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		snd = append(snd, dupFD(tb, c))
		rcv = append(rcv, dupFD(tb, s))
		c.Close()
		s.Close()
	}
	tb.Cleanup(func() {
		for i := range snd {
			syscall.Close(snd[i])
			syscall.Close(rcv[i])
		}
	})
	return snd, rcv
}

func dupFD(tb testing.TB, c net.Conn) int {
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		tb.Fatal(err)
	}
	return fd
}

func rawRW(nr uintptr, fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func cpuNs() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkBatch sends K 20-byte messages over K loopback TCP pairs and
// receives them, with one write(2)/read(2) per message (plain) or one
// io_uring_enter for the K sends and one for the K receives (uring), or
// one side each way. ns/msg and cpu-ns/msg are per message (one send plus
// one receive).
//
//	go test -run '^$' -bench Batch -benchtime 200000x ./internal/uring/
func BenchmarkBatch(b *testing.B) {
	const k = 8
	for _, mode := range []struct {
		name           string
		uringW, uringR bool
	}{{"plain", false, false}, {"send-uring", true, false}, {"recv-uring", false, true}, {"uring", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			snd, rcv := tcpPairs(b, k)
			r, err := New(256)
			if err != nil {
				b.Skip("io_uring:", err)
			}
			defer r.Close()
			msg := []byte("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")[:20]
			bufs := make([][]byte, k)
			for i := range bufs {
				bufs[i] = make([]byte, 512)
			}
			ops := make([]Op, k)
			// batch runs one Do of kind over fds and checks that each op
			// moved the whole message
			batch := func(kind Kind, fds []int, buf func(int) []byte) {
				for i := range ops {
					ops[i] = Op{Kind: kind, FD: fds[i], Buf: buf(i)}
				}
				if err := r.Do(ops); err != nil {
					b.Fatal(err)
				}
				for i := range ops {
					if ops[i].Err != nil || ops[i].N != len(msg) {
						b.Fatal(ops[i].N, ops[i].Err)
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
			b.ResetTimer()
			cpu0 := cpuNs()
			t0 := time.Now()
			for it := 0; it < b.N; it++ {
				if mode.uringW {
					batch(Send, snd, func(int) []byte { return msg })
				} else {
					for i := 0; i < k; i++ {
						if n, err := rawRW(syscall.SYS_WRITE, snd[i], msg); n != len(msg) {
							b.Fatal(n, err)
						}
					}
				}
				if mode.uringR {
					batch(Recv, rcv, func(i int) []byte { return bufs[i] })
				} else {
					for i := 0; i < k; i++ {
						if n, err := rawRW(syscall.SYS_READ, rcv[i], bufs[i]); n != len(msg) {
							b.Fatal(n, err)
						}
					}
				}
			}
			el := time.Since(t0)
			cpu := cpuNs() - cpu0
			msgs := float64(b.N * k)
			b.ReportMetric(float64(el.Nanoseconds())/msgs, "ns/msg")
			b.ReportMetric(float64(cpu)/msgs, "cpu-ns/msg")
		})
	}
}
