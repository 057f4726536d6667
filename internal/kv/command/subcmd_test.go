package command

import (
	"bytes"
	"strings"
	"testing"
)

func subTestCommand() *Command {
	return &Command{Name: "slowlog", Arity: -2, Subs: map[string]*Sub{
		"get": {Name: "slowlog|get", Arity: -2},
		"len": {Name: "slowlog|len", Arity: 2},
	}}
}

// TestCheckSub: Redis's errors for an unknown subcommand (its name up to
// a NUL byte and 128 bytes) and a wrong number of arguments.
func TestCheckSub(t *testing.T) {
	cmd := subTestCommand()
	long := strings.Repeat("x", 200)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"slowlog", "GET"}, ""},
		{[]string{"slowlog", "get", "1", "2"}, ""},
		{[]string{"slowlog", "Len"}, ""},
		{[]string{"slowlog", "len", "x"}, "ERR wrong number of arguments for 'slowlog|len' command"},
		{[]string{"slowlog", "foo"}, "ERR unknown subcommand 'foo'. Try SLOWLOG HELP."},
		{[]string{"slowlog", "a\x00b"}, "ERR unknown subcommand 'a'. Try SLOWLOG HELP."},
		{[]string{"slowlog", long}, "ERR unknown subcommand '" + long[:128] + "'. Try SLOWLOG HELP."},
	} {
		args := make([][]byte, len(tt.args))
		for i, a := range tt.args {
			args[i] = []byte(a)
		}
		if _, got := cmd.CheckSub(args); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.args, got, tt.want)
		}
	}
}

// FuzzCheckSub: any subcommand name and number of arguments gets a
// bounded answer, never a panic.
func FuzzCheckSub(f *testing.F) {
	f.Add([]byte("get"), 2)
	f.Add([]byte("a\x00\r\nb"), 1)
	f.Add(bytes.Repeat([]byte("\xff"), 300), 0)
	cmd := subTestCommand()
	f.Fuzz(func(t *testing.T, name []byte, extra int) {
		extra = max(0, extra%8)
		args := [][]byte{[]byte("slowlog"), name}
		for range extra {
			args = append(args, name)
		}
		sub, msg := cmd.CheckSub(args)
		if len(msg) > 200 {
			t.Fatalf("%q: %d-byte error", name, len(msg))
		}
		if (sub == nil) != strings.HasPrefix(msg, "ERR unknown subcommand '") {
			t.Fatalf("%q: sub %v, error %q", name, sub, msg)
		}
	})
}
