package script

import (
	"context"
	"testing"

	"github.com/gantry-project/gantry/internal/resp"
)

// intCaller answers every command with :1.
type intCaller struct{}

func (intCaller) Call(*Invocation, [][]byte) []byte { return []byte(":1\r\n") }
func (intCaller) Log(int, string)                   {}
func (intCaller) ACLCheck([][]byte) (bool, bool)    { return true, true }

// BenchmarkEvalRun runs a cached script on one engine, as EVALSHA does
// after the lookup: a redis.call, a concatenation with a number, and a
// loop of arithmetic (the VM's arithmetic handlers).
func BenchmarkEvalRun(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"call", "return redis.call('incr', KEYS[1])"},
		{"concat", "return redis.call('set', KEYS[1], ARGV[1] .. ':' .. 12)"},
		{"arith", "local n = 0 for i = 1, 100 do n = n + i * 2 - 1 end return n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := New()
			defer e.Close()
			sc, err := e.Load(bc.body)
			if err != nil {
				b.Fatal(err)
			}
			inv := &Invocation{Caller: intCaller{}, Ctx: context.Background(), Keys: [][]byte{[]byte("k")}, Argv: [][]byte{[]byte("v")}}
			w := resp.Writer{Proto: 2}
			b.ReportAllocs()
			for b.Loop() {
				w.B = w.B[:0]
				e.Run(sc, inv, &w)
			}
		})
	}
}
