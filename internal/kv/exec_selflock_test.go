package kv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// selfLockDeadline bounds each case's round trips: a command that waits for
// a shard EXEC holds hangs the peer, and the case fails at the deadline
// instead of hanging the test. It is a hang detector, far above what a case
// takes, not a measure of speed.
const selfLockDeadline = 20 * time.Second

// selfLockServer serves a peer with a data directory and DEBUG enabled
// (startServer, which does not wait for a peer that hung once the test
// failed).
func selfLockServer(t *testing.T, loops int) (*Server, string) {
	t.Helper()
	e := startServer(t, func(c *Config) {
		c.EventLoops = loops
		c.DataDir = t.TempDir()
		c.EnableDebugCommand = "yes"
	})
	return e.srv, e.addr
}

// selfLockCase sends MULTI; SET a b; cmd; EXEC on a new connection, reads
// the four replies and checks that another connection still gets PONG and
// a reply to GET a (a command that holds EXEC's shards hangs it).
// false: the peer hung (the deadline passed).
func selfLockCase(t *testing.T, addr string, cmd []string) bool {
	t.Helper()
	var conns []net.Conn
	defer func() { // the sweep's cases would run out of descriptors
		for _, nc := range conns {
			nc.Close()
		}
	}()
	dial := func() (net.Conn, *bufio.Reader) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		if err := nc.SetDeadline(time.Now().Add(selfLockDeadline)); err != nil {
			t.Fatal(err)
		}
		return nc, bufio.NewReader(nc)
	}
	req := func(args ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		return b.String()
	}
	x, xr := dial()
	if _, err := x.Write([]byte(req("MULTI") + req("SET", "a", "b") + req(cmd...) + req("EXEC"))); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		v, err := readRESP(xr)
		got = append(got, v)
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%q inside MULTI: no reply from EXEC (got %q): the peer hangs", cmd, got)
				return false
			}
			break // the command closed the connection (QUIT ...): fine
		}
	}
	if len(got) == 4 && !strings.HasPrefix(got[3], "*2\r\n") && !strings.HasPrefix(got[3], "-") {
		t.Errorf("%q inside MULTI: EXEC replied %q", cmd, got[3])
	}
	p, pr := dial()
	if _, err := p.Write([]byte(req("PING") + req("GET", "a"))); err != nil {
		t.Fatal(err)
	}
	if v, err := readRESP(pr); err != nil || v != "+PONG\r\n" {
		t.Errorf("after %q inside MULTI, PING from another client: %q, %v: the peer hangs", cmd, v, err)
		return false
	}
	if v, err := readRESP(pr); err != nil {
		t.Errorf("after %q inside MULTI, GET a from another client: %q, %v: the peer hangs", cmd, v, err)
		return false
	}
	return true
}

// TestExecSelfLockingCommands: a command that locks shards by itself,
// queued in a transaction whose EXEC holds the shards of its keys, must
// not wait for them (Go's mutexes are not reentrant: the peer stopped
// answering everyone). EXEC holds every shard for it and it runs without
// locking; the peer still answers another client.
func TestExecSelfLockingCommands(t *testing.T) {
	cases := [][]string{
		{"INFO"},
		{"INFO", "keyspace"},
		{"INFO", "everything"},
		{"DEBUG", "OBJECT", "a"},
		{"DEBUG", "DIGEST"},
		{"DEBUG", "DIGEST-VALUE", "a"},
		{"DEBUG", "HTSTATS", "0"},
		{"DEBUG", "HTSTATS-KEY", "a"},
		{"DEBUG", "POPULATE", "10"},
		{"DEBUG", "RELOAD"},
		{"DEBUG", "RELOAD", "NOSAVE"},
		{"DEBUG", "LOADAOF"},
		{"MEMORY", "STATS"},
		{"MEMORY", "DOCTOR"},
		{"MEMORY", "USAGE", "a"},
		{"BGSAVE"},
		{"BGREWRITEAOF"},
		{"CONFIG", "SET", "appendonly", "yes"},
		{"CLIENT", "PAUSE", "0", "WRITE"},
		{"MONITOR"},
	}
	for _, loops := range loopModes {
		for _, cmd := range cases {
			t.Run(loops.name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				_, addr := selfLockServer(t, loops.n)
				if cmd[0] == "CONFIG" { // the log is on with a data directory: off, so that SET turns it on
					x := dialSelfLock(t, addr)
					x.send(t, "CONFIG", "SET", "appendonly", "no")
					if v := x.read(t); v != "+OK\r\n" {
						t.Fatalf("CONFIG SET appendonly no: %q", v)
					}
				}
				selfLockCase(t, addr, cmd)
			})
		}
	}
}

// TestExecSelfLockingSweep queues every command that MULTI queues (neither
// no-multi nor noqueue), with simple arguments, after a SET in a
// transaction: none may hang the peer.
func TestExecSelfLockingSweep(t *testing.T) {
	skip := map[string]bool{
		"debug": true, // DEBUG SEGFAULT, SLEEP ...: TestExecSelfLockingCommands runs its subcommands
	}
	for _, loops := range loopModes {
		t.Run(loops.name, func(t *testing.T) {
			srv, addr := selfLockServer(t, loops.n)
			for _, cmd := range srv.cmds.Sorted() {
				if cmd.Has(command.NoMulti|command.NoQueue) || skip[cmd.Name] {
					continue
				}
				var calls [][]string
				if len(cmd.Subs) > 0 {
					subs := make([]*command.Sub, 0, len(cmd.Subs))
					for _, sub := range cmd.Subs {
						subs = append(subs, sub)
					}
					slices.SortFunc(subs, func(a, b *command.Sub) int { return strings.Compare(a.Name, b.Name) })
					for _, sub := range subs {
						name := sub.Name[strings.IndexByte(sub.Name, '|')+1:]
						calls = append(calls, simpleArgs(cmd.Name, sub.Arity, name))
					}
				} else {
					calls = append(calls, simpleArgs(cmd.Name, cmd.Arity, ""))
				}
				for _, args := range calls {
					if !selfLockCase(t, addr, args) {
						t.FailNow() // the peer hangs: every later case would too
					}
				}
			}
		})
	}
}

// simpleArgs builds a call of name (and subcommand sub) with the least
// arguments its arity allows, each "a".
func simpleArgs(name string, arity int, sub string) []string {
	n := arity
	if n < 0 {
		n = -n
	}
	args := []string{name}
	if sub != "" {
		args = append(args, sub)
	}
	for len(args) < n {
		args = append(args, "a")
	}
	return args
}

// TestScriptSelfLockingCommands: a script holds the shards of its keys; a
// command that locks shards itself, called from it, must not wait for
// them (the script and every client of its keys hung). The script takes
// every shard of every database for it.
func TestScriptSelfLockingCommands(t *testing.T) {
	cases := [][]string{{"info"}, {"info", "keyspace"}, {"memory", "stats"}, {"memory", "doctor"}}
	for _, loops := range loopModes {
		for _, cmd := range cases {
			t.Run(loops.name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				_, addr := selfLockServer(t, loops.n)
				call := "redis.call('" + strings.Join(cmd, "','") + "') return 'ok'"
				x := dialSelfLock(t, addr)
				x.send(t, "SET", "a", "b")
				x.send(t, "EVAL", call, "1", "a")
				if v := x.read(t); v != "+OK\r\n" {
					t.Fatalf("SET: %q", v)
				}
				if v := x.read(t); v != "$2\r\nok\r\n" {
					t.Errorf("EVAL %q: %q", call, v)
				}
				y := dialSelfLock(t, addr)
				y.send(t, "GET", "a")
				if v := y.read(t); v != "$1\r\nb\r\n" {
					t.Errorf("GET a after EVAL %q: %q", call, v)
				}
			})
		}
	}
}

type selfLockConn struct {
	nc net.Conn
	br *bufio.Reader
}

func dialSelfLock(t *testing.T, addr string) *selfLockConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(selfLockDeadline)); err != nil {
		t.Fatal(err)
	}
	return &selfLockConn{nc: nc, br: bufio.NewReader(nc)}
}

func (x *selfLockConn) send(t *testing.T, args ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := x.nc.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

// read reads a reply; a timeout fails the test: the peer hangs.
func (x *selfLockConn) read(t *testing.T) string {
	t.Helper()
	v, err := readRESP(x.br)
	if err != nil {
		t.Fatalf("no reply (got %q): %v: the peer hangs", v, err)
	}
	return v
}
