package resp

import (
	"testing"

	"github.com/tidwall/redcon"
)

// pipeline16 is 16 SET commands as redis-benchmark -P 16 sends them.
var pipeline16 = func() []byte {
	var b []byte
	for i := 0; i < 16; i++ {
		b = AppendCommand(b, []byte("SET"), []byte("key:__rand_int__"), []byte("xxx"))
	}
	return b
}()

// BenchmarkParse measures gantry's parser on a 16-command pipeline.
func BenchmarkParse(b *testing.B) {
	args := make([][]byte, 0, 8)
	b.SetBytes(int64(len(pipeline16)))
	b.ReportAllocs()
	for b.Loop() {
		buf := pipeline16
		for len(buf) > 0 {
			var n int
			var err error
			args, n, err = ParseCommand(buf, args)
			if err != nil || n == 0 {
				b.Fatal("parse failed")
			}
			buf = buf[n:]
		}
	}
}

// BenchmarkParseRedcon measures redcon's parser on the same input, for
// the choice of front end documented in docs/kv.md.
func BenchmarkParseRedcon(b *testing.B) {
	args := make([][]byte, 0, 8)
	b.SetBytes(int64(len(pipeline16)))
	b.ReportAllocs()
	for b.Loop() {
		buf := pipeline16
		for len(buf) > 0 {
			complete, a, _, left, err := redcon.ReadNextCommand(buf, args[:0])
			if err != nil || !complete {
				b.Fatal("parse failed")
			}
			args = a
			buf = left
		}
	}
}
