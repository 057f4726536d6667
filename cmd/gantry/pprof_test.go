package main

import (
	"strings"
	"testing"
)

// TestServePprofLoopbackOnly: profiles carry no credentials check, so
// --pprof refuses any address but a loopback one, before listening.
func TestServePprofLoopbackOnly(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{":6060", "only on a loopback address"},
		{"0.0.0.0:6060", "only on a loopback address"},
		{"10.1.2.3:6060", "only on a loopback address"},
		{"example.com:6060", "only on a loopback address"},
		{"6060", "missing port"},
	} {
		err := servePprof(tc.addr, func(error) { t.Errorf("%s: served", tc.addr) })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("servePprof(%q) = %v, want an error with %q", tc.addr, err, tc.want)
		}
	}
}
