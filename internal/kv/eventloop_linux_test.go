//go:build linux

package kv

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An event loop that served events waits for more in epoll_pwait2, or in
// epoll_wait on kernels without it (noPwait2): both serve pipelines from
// clients that take turns, and pub/sub mail from another loop, which has
// to wake a loop waiting there.
func TestEventLoopWait(t *testing.T) {
	was := noPwait2.Load()
	t.Cleanup(func() { noPwait2.Store(was) })
	for _, pwait2 := range []bool{true, false} {
		t.Run(fmt.Sprint("pwait2=", pwait2), func(t *testing.T) {
			noPwait2.Store(!pwait2)
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
		})
	}
}
