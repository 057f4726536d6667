package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every interval until it holds, and fails the test
// after limit with cond's last explanation. Limits are generous: the
// machine is shared, and no test asserts how fast something happened.
func WaitFor(t testing.TB, limit, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		ok, st := cond()
		if ok {
			return
		}
		last = st
		time.Sleep(interval)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", limit, what, last)
}
