package keyspace

import (
	"testing"
	"unsafe"
)

type sizedValue struct{ n int64 }

func (v *sizedValue) Memory() int64 { return v.n }

type plainValue struct{ _ int }

// TestMemoryFunc: a type with a Memory method is measured by it, one
// without counts as objCost.
func TestMemoryFunc(t *testing.T) {
	sized := &sizedValue{n: 1234}
	cases := []struct {
		name string
		fn   func(unsafe.Pointer) int64
		p    unsafe.Pointer
		want int64
	}{
		{"with Memory", memoryFunc[sizedValue](), unsafe.Pointer(sized), 1234},
		{"without", memoryFunc[plainValue](), unsafe.Pointer(&plainValue{}), objCost},
		{"list", memoryFunc[List](), unsafe.Pointer(&List{}), (&List{}).Memory()},
		{"stream", memoryFunc[Stream](), unsafe.Pointer(sampleStream()), int64(sampleStream().Size())},
	}
	for _, tc := range cases {
		if got := tc.fn(tc.p); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestStreamMemoryGrows: a stream's entries count in its memory (it was
// an empty object's size whatever it held).
func TestStreamMemoryGrows(t *testing.T) {
	s := NewStream()
	e := Streams.NewEntry(s)
	empty := e.Memory()
	for i := uint64(1); i <= 1000; i++ {
		s.Append(StreamID{Ms: i}, [][]byte{[]byte("field"), []byte("value-of-some-bytes")}, DefaultNodeLimits)
	}
	if got := e.Memory(); got < empty+1000*24 {
		t.Fatalf("1,000 entries: %d bytes, empty %d: want at least 24,000 more", got, empty)
	}
}
