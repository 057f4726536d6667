package kv

import (
	"bufio"
	"cmp"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wakeClock is a fake clock on which DEBUG SLEEP sleeps: it waits until
// a woken blocked client is about to take its keys (Server.retrying),
// then advances. The command that sleeps holds the keys meanwhile, as
// an EXEC that runs DEBUG SLEEP does.
type wakeClock struct {
	*fakeClock
	woken chan struct{}
}

func (w *wakeClock) Sleep(d time.Duration) {
	<-w.woken
	w.Advance(d)
}

// replyLine reads one reply line (without its CRLF).
func replyLine(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

// bulkReply reads a bulk string reply.
func bulkReply(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	head := replyLine(t, br)
	n, err := strconv.Atoi(strings.TrimPrefix(head, "$"))
	if err != nil || !strings.HasPrefix(head, "$") || n < 0 {
		t.Fatalf("not a bulk string: %q", head)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

// clientID asks r's connection for its id.
func clientID(t *testing.T, r *rawConn) int64 {
	t.Helper()
	if _, err := r.nc.Write([]byte("CLIENT ID\r\n")); err != nil {
		t.Fatal(err)
	}
	line := replyLine(t, bufio.NewReaderSize(r.nc, 16)) // the reply is all there is
	id, err := strconv.ParseInt(strings.TrimPrefix(line, ":"), 10, 64)
	if err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("CLIENT ID: %q", line)
	}
	return id
}

// waitBlockedCount waits until n clients are counted blocked.
func waitBlockedCount(t *testing.T, e *testEnv, n int64) {
	t.Helper()
	for i := 0; i < 1000 && e.srv.blocked.Load() != n; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.srv.blocked.Load(); got != n {
		t.Fatalf("%d clients blocked, want %d", got, n)
	}
}

// TestBlockedKeyExpiredBeforeTry: a client blocked on a key is woken by
// a command that makes the key ready, but the key expires before the
// client can take it (the command holds it: an EXEC that sleeps after
// the push, or SWAPDB bringing an expired key). As in Redis, the client
// finds no key, stays blocked (b in CLIENT LIST) and the key is gone;
// when the key is still there at its try, it is served. The woken
// client must read the clock once it holds the keys: read before, the
// time of its wake-up serves a key that expired meanwhile.
func TestBlockedKeyExpiredBeforeTry(t *testing.T) {
	tests := []struct {
		name    string
		setup   string // run by another client before the blocking one
		blockDB string // the blocked client's SELECT
		wake    string
		reply   string // of wake
		served  string // what the blocked client gets, "" for nothing
	}{
		{
			name:  "exec sleeps past the expiry",
			wake:  "MULTI\r\nRPUSH k hello\r\nPEXPIRE k 100\r\nDEBUG SLEEP 0.2\r\nEXEC\r\n",
			reply: "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n:1\r\n+OK\r\n",
		},
		{
			name:   "exec sleeps short of the expiry",
			wake:   "MULTI\r\nRPUSH k hello\r\nPEXPIRE k 300\r\nDEBUG SLEEP 0.2\r\nEXEC\r\n",
			reply:  "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n:1\r\n+OK\r\n",
			served: "*2\r\n$1\r\nk\r\n$5\r\nhello\r\n",
		},
		{
			name:    "swapdb brings an expired key",
			setup:   "SELECT 1\r\nRPUSH k hello\r\nPEXPIRE k 100\r\nDEBUG SLEEP 0.2\r\n",
			blockDB: "SELECT 9\r\n",
			wake:    "SWAPDB 1 9\r\n",
			reply:   "+OK\r\n",
		},
		{
			name:    "swapdb brings a live key",
			setup:   "SELECT 1\r\nRPUSH k hello\r\nPEXPIRE k 300\r\nDEBUG SLEEP 0.2\r\n",
			blockDB: "SELECT 9\r\n",
			wake:    "SWAPDB 1 9\r\n",
			reply:   "+OK\r\n",
			served:  "*2\r\n$1\r\nk\r\n$5\r\nhello\r\n",
		},
	}
	for _, loops := range loopModes {
		for _, tc := range tests {
			t.Run(loops.name+"/"+tc.name, func(t *testing.T) {
				clk := &wakeClock{fakeClock: newFakeClock(), woken: make(chan struct{}, 1)}
				e := startServer(t, func(c *Config) {
					c.Clock = clk
					c.EnableDebugCommand = "yes"
					c.EventLoops = loops.n
				})
				if tc.setup != "" {
					// the set-up's DEBUG SLEEP only passes the time
					clk.woken <- struct{}{}
					e.raw().roundTrip(tc.setup, "+OK\r\n:1\r\n:1\r\n+OK\r\n")
				}
				hook := func(*Client) {
					select {
					case clk.woken <- struct{}{}:
					default:
					}
				}
				e.srv.retrying.Store(&hook)
				blocked := e.raw()
				id := clientID(t, blocked)
				if tc.blockDB != "" {
					blocked.roundTrip(tc.blockDB, "+OK\r\n")
				}
				blocked.roundTrip("BRPOP k 0\r\n", "")
				if tc.blockDB == "" {
					waitBlocked(t, e, "k", 1)
				}
				waitBlockedCount(t, e, 1)
				// the reply comes once the woken client tried
				e.raw().roundTrip(tc.wake, tc.reply)
				check := e.raw()
				ids := strconv.FormatInt(id, 10)
				if tc.served != "" {
					blocked.roundTrip("", tc.served)
					waitBlockedCount(t, e, 0)
					check.roundTrip("EXISTS k\r\nCLIENT UNBLOCK "+ids+"\r\n", ":0\r\n:0\r\n")
					return
				}
				waitBlockedCount(t, e, 1)
				if _, err := check.nc.Write([]byte("CLIENT LIST ID " + ids + "\r\n")); err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(check.nc)
				if line := bulkReply(t, br); !strings.Contains(line, " flags=b ") || !strings.Contains(line, " cmd=brpop ") {
					t.Errorf("the blocked client's line: %q, want flags=b and cmd=brpop", line)
				}
				// the expired key was deleted by the try, not left for
				// a lookup to find expired
				db := 0
				if tc.blockDB != "" {
					db = 9
				}
				if n := e.srv.dbKS[db].Len(); n != 0 {
					t.Errorf("%d keys in database %d after the try, want 0", n, db)
				}
				check.roundTrip("EXISTS k\r\nCLIENT UNBLOCK "+ids+"\r\n", ":0\r\n:1\r\n")
				blocked.roundTrip("", "*-1\r\n")
				waitBlockedCount(t, e, 0)
			})
		}
	}
}

// TestClientListFlagsBlockedMulti: CLIENT LIST shows b, and the blocking
// command, for a client blocked in any blocking command, x for a client
// inside MULTI, and N once they are done, as Redis.
func TestClientListFlagsBlockedMulti(t *testing.T) {
	tests := []struct {
		name       string
		setup      string // sent by another client first, "" for none
		setupReply string
		cmd        string // puts the client in the state
		reply      string // of cmd ("" for none: it blocks)
		flags      string
		lastCmd    string
		multi      string // CLIENT LIST's multi in the state ("" for -1)
		end        string // ends the state ("" for CLIENT UNBLOCK from another client)
		endReply   string
	}{
		{name: "brpop", cmd: "BRPOP l 0\r\n", flags: "b", lastCmd: "brpop", endReply: "*-1\r\n"},
		{name: "blmove", cmd: "BLMOVE l m LEFT RIGHT 0\r\n", flags: "b", lastCmd: "blmove", endReply: "$-1\r\n"},
		{name: "bzpopmin", cmd: "BZPOPMIN z 0\r\n", flags: "b", lastCmd: "bzpopmin", endReply: "*-1\r\n"},
		{name: "xread", setup: "XADD s 1-1 f v\r\n", setupReply: "$3\r\n1-1\r\n",
			cmd: "XREAD BLOCK 0 STREAMS s $\r\n", flags: "b", lastCmd: "xread", endReply: "*-1\r\n"},
		{name: "multi then exec", cmd: "MULTI\r\nSET a b\r\nSET c d\r\n", reply: "+OK\r\n+QUEUED\r\n+QUEUED\r\n", flags: "x", multi: "2",
			end: "EXEC\r\n", endReply: "*2\r\n+OK\r\n+OK\r\n"},
		{name: "multi then discard", cmd: "MULTI\r\n", reply: "+OK\r\n", flags: "x", multi: "0",
			end: "DISCARD\r\n", endReply: "+OK\r\n"},
		{name: "multi failed", cmd: "MULTI\r\nNOSUCHCOMMAND\r\n", reply: "+OK\r\n-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: \r\n", flags: "x", multi: "0",
			end: "EXEC\r\n", endReply: "-EXECABORT Transaction discarded because of previous errors.\r\n"},
	}
	for _, loops := range loopModes {
		for _, tc := range tests {
			t.Run(loops.name+"/"+tc.name, func(t *testing.T) {
				e := startServer(t, func(c *Config) { c.EventLoops = loops.n })
				x := e.raw()
				id := clientID(t, x)
				ids := strconv.FormatInt(id, 10)
				other := e.raw()
				br := bufio.NewReader(other.nc)
				line := func() string {
					t.Helper()
					if _, err := other.nc.Write([]byte("CLIENT LIST ID " + ids + "\r\n")); err != nil {
						t.Fatal(err)
					}
					return bulkReply(t, br)
				}
				if tc.setup != "" {
					e.raw().roundTrip(tc.setup, tc.setupReply)
				}
				x.roundTrip(tc.cmd, tc.reply)
				if tc.reply == "" {
					waitBlockedCount(t, e, 1)
				}
				l := line()
				if !strings.Contains(l, " flags="+tc.flags+" ") {
					t.Errorf("in the state: %q, want flags=%s", l, tc.flags)
				}
				multi := cmp.Or(tc.multi, "-1")
				if !strings.Contains(l, " multi="+multi+" ") {
					t.Errorf("in the state: %q, want multi=%s", l, multi)
				}
				if tc.lastCmd != "" && !strings.Contains(l, " cmd="+tc.lastCmd+" ") {
					t.Errorf("in the state: %q, want cmd=%s", l, tc.lastCmd)
				}
				if tc.end == "" {
					if _, err := other.nc.Write([]byte("CLIENT UNBLOCK " + ids + "\r\n")); err != nil {
						t.Fatal(err)
					}
					if r := replyLine(t, br); r != ":1" {
						t.Fatalf("CLIENT UNBLOCK: %q", r)
					}
					x.roundTrip("", tc.endReply)
					waitBlockedCount(t, e, 0)
				} else {
					x.roundTrip(tc.end, tc.endReply)
				}
				if l := line(); !strings.Contains(l, " flags=N ") || !strings.Contains(l, " multi=-1 ") {
					t.Errorf("after: %q, want flags=N multi=-1", l)
				}
			})
		}
	}
}
