package keyspace

import (
	"fmt"
	"slices"
	"testing"
)

// TestHLLPatLen pins the register and run length of a few elements to
// what redis-server 7.0 reports (PFADD then PFDEBUG GETREG), which checks
// MurmurHash64A with Redis's seed and the pattern count together.
func TestHLLPatLen(t *testing.T) {
	tests := []struct {
		ele   string
		index int
		count uint8
	}{
		{"a", 12711, 2},
		{"hello", 9216, 1},
		{"", 5938, 2},
		{"abcdefghi", 6903, 1},
	}
	for _, tt := range tests {
		i, n := hllPatLen([]byte(tt.ele))
		if i != tt.index || n != tt.count {
			t.Errorf("%q: register %d count %d, want %d %d", tt.ele, i, n, tt.index, tt.count)
		}
	}
}

// TestHLLSparseDenseAgree adds the same elements to a sparse and a dense
// HyperLogLog: their registers and counts stay equal, and the sparse one
// turns dense once it passes the size limit.
func TestHLLSparseDenseAgree(t *testing.T) {
	sparse := NewHLL()
	dense, err := HLLToDense(NewHLL())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		ele := []byte(fmt.Sprint("ele", i))
		var err error
		if sparse, _, err = HLLAdd(sparse, ele, 3000); err != nil {
			t.Fatal(err)
		}
		if dense, _, err = HLLAdd(dense, ele, 3000); err != nil {
			t.Fatal(err)
		}
		if i%250 != 0 {
			continue
		}
		a, err1 := HLLCount(sparse)
		b, err2 := HLLCount(dense)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("after %d elements: sparse %d %v, dense %d %v", i+1, a, err1, b, err2)
		}
	}
	if HLLIsSparse(sparse) {
		t.Errorf("3000 elements still sparse (%d bytes)", len(sparse))
	}
	ra, _ := HLLRegisters(sparse)
	rb, _ := HLLRegisters(dense)
	if !slices.Equal(ra, rb) {
		t.Error("registers differ")
	}
}

// FuzzHLL: arbitrary bytes after a HyperLogLog header are either refused
// as corrupt or give the same count sparse and converted to dense; adding
// to them never panics.
func FuzzHLL(f *testing.F) {
	h := NewHLL()
	for _, e := range []string{"a", "b", "c"} {
		h, _, _ = HLLAdd(h, []byte(e), 3000)
	}
	f.Add(h[hllHdrSize:])
	f.Add(NewHLL()[hllHdrSize:])
	f.Add([]byte{0x7f, 0xff, 0x80})
	f.Add([]byte{0x40})
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append(append([]byte{}, NewHLL()[:hllHdrSize]...), body...)
		if IsHLL(b) != nil {
			return
		}
		n, err := HLLCount(b)
		d, derr := HLLToDense(b)
		if (err == nil) != (derr == nil) {
			t.Fatalf("count error %v, conversion error %v", err, derr)
		}
		if err == nil {
			if m, _ := HLLCount(d); m != n {
				t.Fatalf("sparse count %d, dense %d", n, m)
			}
		}
		for _, e := range []string{"x", "y", "zz"} {
			nb, _, err := HLLAdd(b, []byte(e), 200)
			if err != nil {
				return
			}
			b = nb
		}
	})
}
