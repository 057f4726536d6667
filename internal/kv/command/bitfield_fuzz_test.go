package command

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzBitfield runs BITFIELD and BITFIELD_RO with fuzzed arguments (split
// on blanks) against a short string: nothing panics, a reply is an error or
// an array with one element per operation, and the string never grows past
// the farthest bit written.
func FuzzBitfield(f *testing.F) {
	for _, s := range []string{
		"GET u8 0", "SET i64 0 -1 GET u63 1", "OVERFLOW SAT INCRBY i5 #3 100 OVERFLOW FAIL INCRBY u1 7 1",
		"GET i8 #-1", "SET u2 1000 9", "OVERFLOW WRAP INCRBY i64 0 9223372036854775807 INCRBY i64 0 1",
		"GET", "OVERFLOW", "SET i1 0 0 GET", "GET x8 0",
	} {
		f.Add(s, false)
	}
	old := MaxStringSize
	MaxStringSize = 4096 // offsets past 4 KiB are refused, as past proto-max-bulk-len
	f.Cleanup(func() { MaxStringSize = old })
	f.Fuzz(func(t *testing.T, args string, ro bool) {
		c, table := newTestCtx()
		run(c, table, 0, "SET", "k", "\x01\x02\x03")
		name := "BITFIELD"
		if ro {
			name = "BITFIELD_RO"
		}
		out := run(c, table, 0, append([]string{name, "k"}, strings.Fields(args)...)...)
		if !strings.HasPrefix(out, "-") && !strings.HasPrefix(out, "*") {
			t.Fatalf("reply %q", out)
		}
		got := run(c, table, 0, "GET", "k")
		if n := bytes.Count([]byte(got), nil); n > 4096+64 {
			t.Fatalf("string grew to %d bytes", n)
		}
	})
}
