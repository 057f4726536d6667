//go:build linux

package kv

import (
	"bufio"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// An event loop that served events waits for more in epoll_pwait2, or in
// epoll_wait on kernels without it (noPwait2) and where a seccomp profile
// refuses it (EPERM, as container runtimes with an older default profile
// do): each serves pipelines from clients that take turns, and pub/sub
// mail from another loop, which has to wake a loop waiting there.
func TestEventLoopWait(t *testing.T) {
	was, call := noPwait2.Load(), epollPwait2
	t.Cleanup(func() { noPwait2.Store(was); epollPwait2 = call })
	for _, tc := range []struct {
		name    string
		noPwait bool          // known absent from the start
		refuse  syscall.Errno // what epoll_pwait2 answers; 0 is the real call
	}{
		{name: "pwait2"},
		{name: "epoll_wait", noPwait: true},
		{name: "pwait2 ENOSYS", refuse: syscall.ENOSYS},
		{name: "pwait2 EPERM", refuse: syscall.EPERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noPwait2.Store(tc.noPwait)
			epollPwait2 = call
			var refused atomic.Int64
			if tc.refuse != 0 {
				epollPwait2 = func(int, []syscall.EpollEvent, *syscall.Timespec) (int, syscall.Errno) {
					refused.Add(1)
					return 0, tc.refuse
				}
			}
			e := startServer(t, func(c *Config) { c.EventLoops = 2 })
			// connections go to the loops in turn: sub on one, pub on the other
			sub, pub, third := e.raw(), e.raw(), e.raw()
			sub.pipeline([]string{"SUBSCRIBE ch"})
			br := bufio.NewReader(sub.nc)
			for i := 0; i < 50; i++ {
				want := fmt.Sprint(i)
				got := pub.pipeline([]string{"INCR n", "PUBLISH ch " + want})
				if got[1] != ":1\r\n" {
					t.Fatalf("PUBLISH: %q, want one receiver", got[1])
				}
				sub.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				msg, err := readRESP(br)
				if err != nil || !strings.HasSuffix(msg, "$2\r\nch\r\n$"+fmt.Sprint(len(want))+"\r\n"+want+"\r\n") {
					t.Fatalf("message %d: %q %v", i, msg, err)
				}
				if got := third.pipeline([]string{"GET n"})[0]; got != fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(i+1)), i+1) {
					t.Fatalf("GET n after %d INCRs: %q", i+1, got)
				}
			}
			if tc.refuse != 0 {
				// the loops fell back at their first wait and asked no more
				if n := refused.Load(); n == 0 || n > 2 || !noPwait2.Load() {
					t.Fatalf("epoll_pwait2 refused %d times, fallback set %v; want 1-2 (one per loop) and set", n, noPwait2.Load())
				}
			}
		})
	}
}
