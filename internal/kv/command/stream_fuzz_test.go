package command

import (
	"strconv"
	"testing"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

func TestParseStreamID(t *testing.T) {
	max := uint64(1<<64 - 1)
	tests := []struct {
		in           string
		missing      uint64
		strict, star bool
		want         keyspace.StreamID
		seqGiven, ok bool
	}{
		{"1-2", 0, true, false, keyspace.StreamID{Ms: 1, Seq: 2}, true, true},
		{"5", 7, true, false, keyspace.StreamID{Ms: 5, Seq: 7}, true, true},
		{"-", 0, false, false, keyspace.StreamID{}, true, true},
		{"+", 0, false, false, keyspace.MaxStreamID, true, true},
		{"-", 0, true, false, keyspace.StreamID{}, false, false},
		{"5-*", 0, true, true, keyspace.StreamID{Ms: 5}, false, true},
		{"5-*", 0, true, false, keyspace.StreamID{}, false, false},
		{"18446744073709551615-18446744073709551615", 0, true, false, keyspace.StreamID{Ms: max, Seq: max}, true, true},
		{"18446744073709551616-0", 0, true, false, keyspace.StreamID{}, false, false},
		{"1-2-3", 0, true, false, keyspace.StreamID{}, false, false},
		{"-1", 0, true, false, keyspace.StreamID{}, false, false},
		{"1--1", 0, true, false, keyspace.StreamID{}, false, false},
		{"", 0, true, false, keyspace.StreamID{}, false, false},
		{"1-", 0, true, false, keyspace.StreamID{}, false, false},
		{"+5-1", 0, true, false, keyspace.StreamID{Ms: 5, Seq: 1}, true, true}, // strtoull takes a sign
		{"007-01", 0, true, false, keyspace.StreamID{Ms: 7, Seq: 1}, true, true},
	}
	for _, tt := range tests {
		id, seq, ok := ParseStreamID([]byte(tt.in), tt.missing, tt.strict, tt.star)
		if ok != tt.ok || (ok && (id != tt.want || seq != tt.seqGiven)) {
			t.Errorf("ParseStreamID(%q) = %v %v %v, want %v %v %v", tt.in, id, seq, ok, tt.want, tt.seqGiven, tt.ok)
		}
	}
}

// FuzzParseStreamID: no input panics, and an ID that parses prints as
// "ms-seq" and parses back to itself.
func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"1-2", "0", "-", "+", "5-*", "18446744073709551615-18446744073709551615", " +1-0", "1-2-3", ""} {
		f.Add([]byte(s), true, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, strict, star bool) {
		id, seqGiven, ok := ParseStreamID(b, 0, strict, star)
		if !ok || !seqGiven {
			return
		}
		again, _, ok2 := ParseStreamID(id.AppendTo(nil), 0, true, false)
		if !ok2 || again != id {
			t.Fatalf("%q parsed as %v, which prints as %q and parses as %v %v", b, id, id.String(), again, ok2)
		}
		if id.String() != strconv.FormatUint(id.Ms, 10)+"-"+strconv.FormatUint(id.Seq, 10) {
			t.Fatalf("format of %v", id)
		}
	})
}
