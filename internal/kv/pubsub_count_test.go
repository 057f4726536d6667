package kv

import (
	"strconv"
	"testing"
)

// TestAppendCount: the short path of a message's counts and lengths
// writes what strconv writes, on both sides of its bounds.
func TestAppendCount(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 42, 99, 100, 101, 999, 1000, 65535, 1 << 20, 1<<31 - 1} {
		got := string(appendCount([]byte("x"), n))
		if want := "x" + strconv.Itoa(n); got != want {
			t.Errorf("appendCount(%d) = %q, want %q", n, got, want)
		}
	}
}
