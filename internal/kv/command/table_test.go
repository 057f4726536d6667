package command

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

func newTestCtx() (*Ctx, *Table) {
	t := NewTable()
	t.Register(DataCommands()...)
	c := &Ctx{KS: keyspace.New(), Track: &Tracker{}}
	c.W.Proto = 2
	return c, t
}

// run runs a command (read or write) the way the dispatcher does, without
// logging it, and returns its reply.
func run(c *Ctx, t *Table, now int64, args ...string) string {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	cmd := t.Lookup(b[0])
	c.Args, c.Cmd, c.Now = b, cmd, now
	c.Keys = cmd.GetKeys(b, c.Keys[:0])
	if cmd.Has(LockAll) {
		c.LockAll()
	} else {
		c.LockKeys()
	}
	cmd.Handler(c)
	c.Unlock()
	c.ResetRecord()
	out := string(c.W.B)
	c.W.B = c.W.B[:0]
	return out
}

// TestHandlersWithoutServer runs commands on a keyspace with no server,
// connection or log: the command layer stands on its own.
func TestHandlersWithoutServer(t *testing.T) {
	c, table := newTestCtx()
	steps := []struct {
		now  int64
		args []string
		want string
	}{
		{0, []string{"SET", "k", "v", "PX", "100"}, "+OK\r\n"},
		{50, []string{"GET", "k"}, "$1\r\nv\r\n"},
		{100, []string{"GET", "k"}, "$-1\r\n"},
		{100, []string{"RPUSH", "l", "a", "b"}, ":2\r\n"},
		{100, []string{"TYPE", "l"}, "+list\r\n"},
		{100, []string{"GET", "l"}, "-" + ErrWrongType + "\r\n"},
		{100, []string{"ZADD", "z", "1.5", "m"}, ":1\r\n"},
		{100, []string{"ZSCORE", "z", "m"}, "$3\r\n1.5\r\n"},
		{100, []string{"FLUSHALL"}, "+OK\r\n"},
		{100, []string{"DBSIZE"}, ":0\r\n"},
	}
	for _, s := range steps {
		got := run(c, table, s.now, s.args...)
		if got != s.want {
			t.Errorf("%v at %d: got %q, want %q", s.args, s.now, got, s.want)
		}
	}
}

func TestTableRegister(t *testing.T) {
	table := NewTable()
	table.Register(Spec{Name: "Mine", Arity: 2, Flags: "write selflock fast", First: 1, Last: 1, Step: 1, Handler: func(*Ctx) {}})
	cmd := table.Lookup([]byte("MINE"))
	if cmd == nil || cmd.Name != "mine" || !cmd.Has(Write|SelfLock) || cmd.Has(ReadOnly) {
		t.Fatalf("lookup: %+v", cmd)
	}
	if strings.Join(cmd.Flags, " ") != "write fast" {
		t.Errorf("COMMAND flags %v: internal flags must not show", cmd.Flags)
	}
	if !cmd.ArityOK(2) || cmd.ArityOK(3) {
		t.Error("arity 2 not checked")
	}
	if n := testing.AllocsPerRun(100, func() { table.Lookup([]byte("mInE")) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate name was accepted")
		}
	}()
	table.Register(Spec{Name: "mine", Handler: func(*Ctx) {}})
}

func TestApplyRefuses(t *testing.T) {
	c, table := newTestCtx()
	table.Register(Spec{Name: "blocker", Arity: -1, Flags: "write selflock", Handler: func(*Ctx) { t.Fatal("ran") }})
	for _, args := range [][]string{{"GET", "k"}, {"nosuch"}, {"SET", "k"}, {"blocker"}} {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		if err := table.Apply(c, b, 0); err == nil {
			t.Errorf("Apply(%v) accepted", args)
		}
	}
	if err := table.Apply(c, [][]byte{[]byte("INCR"), []byte("k")}, 0); err != nil {
		t.Fatal(err)
	}
	if err := table.Apply(c, [][]byte{[]byte("LPUSH"), []byte("k"), []byte("x")}, 0); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("a failing write: %v", err)
	}
	if c.KS.Len() != 1 || len(c.Locked) != 0 {
		t.Errorf("%d keys, %d shards left locked", c.KS.Len(), len(c.Locked))
	}
}

func TestTracker(t *testing.T) {
	var tr Tracker
	ks := keyspace.New()
	k, other := []byte("k"), []byte("other")
	lock := func(key []byte) func() {
		i := keyspace.ShardOf(key)
		ks.LockShard(i)
		return func() { ks.UnlockShard(i) }
	}
	var flag atomic.Bool
	w := NewWaiter()
	ch := w.C
	u := lock(k)
	tr.WatchLocked(k, &flag)
	tr.BlockLocked(k, w)
	tr.SetMovingLocked(k, true)
	u()
	u = lock(other)
	tr.TouchLocked(other)
	u()
	if flag.Load() || len(ch) != 0 {
		t.Fatal("a change of another key reached the watcher")
	}
	u = lock(k)
	if !tr.MovingLocked([][]byte{other, k}) || tr.BlockedLocked(k) != 1 {
		t.Fatal("moving or blocked not recorded")
	}
	tr.TouchLocked(k)
	tr.TouchLocked(k) // the channel holds one wake-up; a second does not block
	if !flag.Load() || len(ch) != 1 {
		t.Fatal("the change did not reach the watcher and the blocked client")
	}
	tr.UnwatchLocked(k, &flag)
	tr.UnblockLocked(k, w)
	tr.SetMovingLocked(k, false)
	flag.Store(false)
	<-ch
	tr.TouchLocked(k)
	u()
	if flag.Load() || len(ch) != 0 || tr.MovingLocked([][]byte{k}) {
		t.Fatal("state left after unregistering")
	}
}
