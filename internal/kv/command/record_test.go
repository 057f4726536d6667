package command

import (
	"testing"

	"github.com/gantry-project/gantry/internal/resp"
)

// record runs a command as run does and returns its log record ("" when
// it changed nothing) and its reply.
func record(c *Ctx, t *Table, now int64, args ...string) (rec, reply string) {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	cmd := t.Lookup(b[0])
	c.Args, c.Cmd, c.Now = b, cmd, now
	c.Keys = cmd.GetKeys(b, c.Keys[:0])
	c.LockKeys()
	cmd.Handler(c)
	if c.Dirty > 0 {
		rec = string(c.Record())
	}
	c.Unlock()
	c.ResetRecord()
	reply = string(c.W.B)
	c.W.B = c.W.B[:0]
	return rec, reply
}

func cmdText(args ...string) string {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return string(resp.AppendCommand(nil, b...))
}

// TestXAddRecord: XADD logs the ID it made and the exact trim it did,
// and the record is the same whether or not anything asks for it.
func TestXAddRecord(t *testing.T) {
	c, table := newTestCtx()
	steps := []struct {
		args  []string
		rec   string
		reply string
	}{
		{[]string{"XADD", "s", "*", "f", "v"}, cmdText("XADD", "s", "5-0", "f", "v"), "$3\r\n5-0\r\n"},
		{[]string{"XADD", "s", "*", "f", "v", "g", "w"}, cmdText("XADD", "s", "5-1", "f", "v", "g", "w"), "$3\r\n5-1\r\n"},
		{[]string{"XADD", "s", "NOMKSTREAM", "MAXLEN", "~", "1", "*", "f", "v"},
			cmdText("XADD", "s", "MAXLEN", "=", "3", "5-2", "f", "v"), "$3\r\n5-2\r\n"},
		{[]string{"XADD", "s", "MAXLEN", "1", "7-7", "f", "v"}, cmdText("XADD", "s", "MAXLEN", "=", "1", "7-7", "f", "v"), "$3\r\n7-7\r\n"},
		{[]string{"XADD", "s", "MINID", "7", "*", "f", "v"}, cmdText("XADD", "s", "MINID", "=", "7", "7-8", "f", "v"), "$3\r\n7-8\r\n"},
		{[]string{"XADD", "s", "1-1", "f", "v"}, "", "-" + errStreamTopItem + "\r\n"},
	}
	for i, st := range steps {
		rec, reply := record(c, table, 5, st.args...)
		if rec != st.rec || reply != st.reply {
			t.Errorf("step %d %v: record %q reply %q; want %q %q", i, st.args, rec, reply, st.rec, st.reply)
		}
	}
	// the same commands with nothing asking for the record reply the same
	// and leave nothing behind
	c2, table2 := newTestCtx()
	for _, st := range steps {
		if reply := run(c2, table2, 5, st.args...); reply != st.reply {
			t.Errorf("%v without the record: reply %q, want %q", st.args, reply, st.reply)
		}
		if c2.parts.on || c2.parts.tail != nil || c2.custom {
			t.Fatalf("%v: a record is left after ResetRecord", st.args)
		}
	}
}

// TestLogPartsOrder: records of LogParts and Log follow one another in
// the order they were made; LogParts copies its head (it may be on the
// handler's stack); a head longer than the kept parts is built at once.
func TestLogPartsOrder(t *testing.T) {
	c, _ := newTestCtx()
	c.Args = [][]byte{[]byte("CMD"), []byte("a"), []byte("b")}
	long := make([][]byte, 12)
	for i := range long {
		long[i] = []byte{'h', byte('a' + i)}
	}
	cases := []struct {
		name string
		do   func()
		want string
	}{
		{"parts", func() {
			head := [][]byte{[]byte("X"), []byte("12")}
			c.LogParts(head, c.Args[1:])
			head[1][0] = '9' // the handler's buffer changes after
		}, cmdText("X", "12", "a", "b")},
		{"parts then log", func() {
			c.LogParts([][]byte{[]byte("X")}, c.Args[2:])
			c.Log([]byte("DEL"), []byte("k"))
		}, cmdText("X", "b") + cmdText("DEL", "k")},
		{"log then parts", func() {
			c.Log([]byte("DEL"), []byte("k"))
			c.LogParts([][]byte{[]byte("X")}, nil)
		}, cmdText("DEL", "k") + cmdText("X")},
		{"parts twice", func() {
			c.LogParts([][]byte{[]byte("X")}, c.Args[1:2])
			c.LogParts([][]byte{[]byte("Y")}, c.Args[2:])
		}, cmdText("X", "a") + cmdText("Y", "b")},
		{"long head", func() { c.LogParts(long, c.Args[1:2]) },
			cmdText("ha", "hb", "hc", "hd", "he", "hf", "hg", "hh", "hi", "hj", "hk", "hl", "a")},
		{"none", func() {}, cmdText("CMD", "a", "b")},
	}
	for _, tc := range cases {
		tc.do()
		if got := string(c.Record()); got != tc.want {
			t.Errorf("%s: record %q, want %q", tc.name, got, tc.want)
		}
		c.ResetRecord()
	}
}
