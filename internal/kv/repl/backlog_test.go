package repl

import (
	"bytes"
	"testing"
)

// TestBacklogResize: a resized backlog keeps the newest bytes that fit,
// at their offsets, and goes on as a ring of the new size.
func TestBacklogResize(t *testing.T) {
	stream := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	tests := []struct {
		name      string
		from, to  int
		written   int   // bytes of stream written before the resize
		wantStart int64 // oldest offset held after it
	}{
		{"grow, all kept", 20 << 10, 64 << 10, 30 << 10, 10 << 10},
		{"shrink, newest kept", 64 << 10, 16 << 10, 40 << 10, 24 << 10},
		{"shrink below the minimum", 32 << 10, 1, 20 << 10, 4 << 10},
		{"same size", 16 << 10, 16 << 10, 8 << 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBacklog(tt.from)
			b.write(stream[:tt.written])
			b.resize(tt.to)
			if b.start != tt.wantStart || b.end != int64(tt.written) {
				t.Fatalf("after resize: [%d, %d), want [%d, %d)", b.start, b.end, tt.wantStart, tt.written)
			}
			got, ok := b.readFrom(b.start, nil, 0)
			if !ok || !bytes.Equal(got, stream[b.start:tt.written]) {
				t.Fatalf("bytes after resize differ")
			}
			// it goes on: more writes wrap in the new ring
			b.write(stream[tt.written:])
			got, ok = b.readFrom(b.start, nil, 0)
			if !ok || b.end != int64(len(stream)) || !bytes.Equal(got, stream[b.start:]) || int(b.end-b.start) > len(b.buf) {
				t.Fatalf("after more writes: [%d, %d) of a %d-byte ring", b.start, b.end, len(b.buf))
			}
		})
	}
}
