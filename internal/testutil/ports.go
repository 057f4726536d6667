// Package testutil holds helpers shared by tests of several packages.
package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports are drawn below Linux's ephemeral range (32768-60999). A port
// found with "127.0.0.1:0" and released can be taken at once by the
// outgoing connection of a test running in parallel, and a server started
// on it then fails with "address already in use"; ports below the range are
// only ever taken by explicit listeners.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu sync.Mutex
	handed  = map[int]bool{}
)

// FreePort returns a loopback TCP port that is free now and that no other
// caller in this process has been given.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := portLow + rand.IntN(portHigh-portLow)
		if handed[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		handed[p] = true
		return p
	}
	t.Fatal("testutil: no free loopback port found between 20000 and 32000")
	return 0
}

// FreeAddr returns "127.0.0.1:<FreePort>".
func FreeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}
