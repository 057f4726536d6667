package keyspace

import (
	"strconv"
	"testing"
)

// TestSetIntegerMemory: a set of integers is counted as the intset it is:
// the 16-byte Set and one slice of 2, 4 or 8 bytes a member, up to
// set-max-intset-entries (512) members; SADD k 1 2 3 takes 24 bytes.
func TestSetIntegerMemory(t *testing.T) {
	tests := []struct {
		name  string
		first int64
		n     int
		step  int64
		max   int64 // Memory() at most
	}{
		{"1 2 3", 1, 3, 1, 16 + 8},
		{"3 of 4 bytes", 100000, 3, 1, 16 + 24},
		{"3 of 8 bytes", 1 << 40, 3, 1, 16 + 32},
		{"500 of 2 bytes", 0, 500, 1, 16 + 1 + 1000 + 200},
		{"512 of 4 bytes", 1 << 20, 512, 3, 16 + 1 + 2048 + 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet()
			for i := range tc.n {
				s.Add([]byte(strconv.FormatInt(tc.first+int64(i)*tc.step, 10)))
			}
			if s.Len() != tc.n {
				t.Fatalf("len %d, want %d", s.Len(), tc.n)
			}
			if m := s.Memory(); m > tc.max {
				t.Errorf("memory %d, want at most %d", m, tc.max)
			}
		})
	}
}
