package script

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/gantry-project/gantry/internal/resp"
)

// FuzzReplyToLua feeds arbitrary bytes to the RESP reply converter: it
// must return an error or a value, never panic or allocate without bound.
func FuzzReplyToLua(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":12\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*2\r\n:1\r\n$1\r\na\r\n",
		"%1\r\n+k\r\n:1\r\n", "~1\r\n+a\r\n", ",1.5\r\n", "#t\r\n", "_\r\n", "(123\r\n", "=7\r\ntxt:abc\r\n", "*999999999\r\n",
		"|1\r\n+k\r\n:1\r\n$1\r\nv\r\n", "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", "|999999\r\n"} {
		f.Add([]byte(s))
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := replyToLua(L, b, 0)
		if err == nil && (n <= 0 || n > len(b)) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
	})
}

// FuzzDecoders runs cjson.decode and cmsgpack.unpack on arbitrary input:
// a Lua error is fine, a panic is not.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"\u00e9\ud83d\ude00"`, "[1e400]", "\x93\x01\x02\xa1a", "\xdd\xff\xff\xff\xff", "\xde\x00\x01\xc0\xc0"} {
		f.Add(s)
	}
	e := New()
	defer e.Close()
	f.Fuzz(func(t *testing.T, s string) {
		for _, fn := range []string{"cjson.decode", "cmsgpack.unpack"} {
			sc, err := e.Load("return type(" + fn + "(ARGV[1]))")
			if err != nil {
				t.Fatal(err)
			}
			w := newWriter()
			e.Run(sc, &Invocation{Caller: &echoCaller{}, Argv: [][]byte{[]byte(s)}}, w)
			if len(w.B) == 0 {
				t.Fatal("no reply")
			}
		}
	})
}

func newWriter() *resp.Writer { return &resp.Writer{Proto: 2} }
