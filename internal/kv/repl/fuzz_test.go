package repl

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzPSyncReply: any line parses to a result or an error, never a panic,
// and a FULLRESYNC result has a valid id and a non-negative offset.
func FuzzPSyncReply(f *testing.F) {
	id := strings.Repeat("ab", 20)
	for _, s := range []string{"+FULLRESYNC " + id + " 0", "+FULLRESYNC " + id + " 123456", "+CONTINUE",
		"+CONTINUE " + id, "-ERR nope", "+FULLRESYNC x -1", "", "+CONTINUE a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, l string) {
		full, rid, off, err := parsePSyncReply(l)
		if err != nil {
			return
		}
		if full && (!validReplID(rid) || off < 0) {
			t.Fatalf("%q: full sync with id %q offset %d", l, rid, off)
		}
		if rid != "" && !validReplID(rid) {
			t.Fatalf("%q: bad id %q accepted", l, rid)
		}
	})
}

// FuzzBacklog checks the ring against a plain byte slice: whatever is
// written, every offset still held reads back the same bytes.
func FuzzBacklog(f *testing.F) {
	f.Add([]byte("hello world"), uint16(3), uint8(7))
	f.Add(bytes.Repeat([]byte("x"), 40000), uint16(17000), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, reads uint8) {
		b := newBacklog(16 * 1024)
		var all []byte
		step := int(chunk)%5000 + 1
		for i := 0; i < len(data); i += step {
			p := data[i:min(i+step, len(data))]
			b.write(p)
			all = append(all, p...)
		}
		if b.end != int64(len(all)) || b.end-b.start > int64(len(b.buf)) {
			t.Fatalf("end %d start %d after %d bytes", b.end, b.start, len(all))
		}
		for k := 0; k <= int(reads)%8; k++ {
			off := b.start + (b.end-b.start)*int64(k)/8
			got, ok := b.readFrom(off, nil, 0)
			if !ok || !bytes.Equal(got, all[off:]) {
				t.Fatalf("read from %d: ok %v, %d bytes, want %d", off, ok, len(got), len(all)-int(off))
			}
		}
		if _, ok := b.readFrom(b.end+1, nil, 0); ok {
			t.Fatal("read past the end")
		}
		if b.start > 0 {
			if _, ok := b.readFrom(b.start-1, nil, 0); ok {
				t.Fatal("read before the start")
			}
		}
	})
}
