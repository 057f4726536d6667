package kv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// aclConn is a raw connection whose replies are compared byte for byte
// with what redis-server 7.0.15 sends.
type aclConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (e *testEnv) aclConn(proto int) *aclConn {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	c := &aclConn{t: e.t, nc: nc, br: bufio.NewReader(nc)}
	if proto == 3 {
		c.send("HELLO", "3")
		c.send("PING")
		c.skipUntil("+PONG\r\n") // past HELLO's map
	}
	return c
}

func (c *aclConn) send(args ...string) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.nc.Write([]byte(b.String())); err != nil {
		c.t.Fatal(err)
	}
}

// deadline only keeps a broken test from hanging: every read here waits
// for bytes the server sends (or for its close) whatever the time.
func (c *aclConn) deadline() { _ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second)) }

func (c *aclConn) expect(want string) {
	c.t.Helper()
	c.deadline()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c.br, buf); err != nil {
		c.t.Fatalf("read: %v (got %q, want %q)", err, buf, want)
	}
	if string(buf) != want {
		c.t.Fatalf("got %q, want %q", buf, want)
	}
}

func (c *aclConn) do(want string, args ...string) {
	c.t.Helper()
	c.send(args...)
	c.expect(want)
}

func (c *aclConn) skipUntil(suffix string) {
	c.t.Helper()
	c.deadline()
	var got []byte
	for !strings.HasSuffix(string(got), suffix) {
		b, err := c.br.ReadByte()
		if err != nil {
			c.t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, b)
	}
}

// expectClosed reads until the server closes the connection and fails if
// it sent anything more first (Redis sends nothing to a client it frees).
func (c *aclConn) expectClosed() {
	c.t.Helper()
	c.deadline()
	b, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("read: %v (got %q), want the connection closed", err, b)
	}
	if len(b) > 0 {
		c.t.Fatalf("got %q before the close, want nothing", b)
	}
}

// alive checks the connection still answers: a subscriber's PING.
func (c *aclConn) alive(proto int) {
	c.t.Helper()
	if proto == 3 {
		c.do("+PONG\r\n", "PING")
		return
	}
	c.do("*2\r\n$4\r\npong\r\n$0\r\n\r\n", "PING")
}

func subReply(proto int, kind, name string, n int) string {
	h := "*3"
	if proto == 3 {
		h = ">3"
	}
	return fmt.Sprintf("%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n", h, len(kind), kind, len(name), name, n)
}

// TestACLRevokeSubscribers: an ACL SETUSER that takes a channel away from
// a user closes its connections subscribed to it (Redis 7.0's
// ACLKillPubsubClientsIfNeeded), whatever their protocol and loop; the
// cases and the replies are redis-server 7.0.15's (the Redis suite's
// "Subscribers are killed ..." and "... pardoned ..." tests and more).
func TestACLRevokeSubscribers(t *testing.T) {
	type sub struct {
		proto      int
		cmd, name  string
		closed     bool // by the change
		notPubsub  bool // not a subscriber: AUTHs only
		unsubAfter bool // unsubscribes again before the change
	}
	for _, tc := range []struct {
		name     string
		channels string // the user's channel rules before
		subs     []sub
		change   []string // ACL SETUSER ps ... after the subscriptions
	}{
		{"channel revoked", "&foo:1", []sub{{2, "subscribe", "foo:1", true, false, false}, {2, "", "", false, true, false}}, []string{"resetchannels"}},
		{"shard channel revoked", "&foo:1", []sub{{2, "ssubscribe", "foo:1", true, false, false}}, []string{"resetchannels"}},
		{"pattern revoked", "&bar:*", []sub{{2, "psubscribe", "bar:*", true, false, false}}, []string{"resetchannels"}},
		{"allchannels revoked", "allchannels", []sub{{2, "psubscribe", "foo", false, false, false}, {3, "subscribe", "x", true, false, false}}, []string{"resetchannels", "&foo"}},
		{"superset kept", "resetchannels &foo:1 &bar:* &orders", []sub{
			{2, "subscribe", "foo:1", false, false, false}, {2, "ssubscribe", "orders", false, false, false}, {3, "psubscribe", "bar:*", false, false, false},
		}, []string{"resetchannels", "&foo:1", "&bar:*", "&orders", "&baz:qaz", "&zoo:*"}},
		{"allchannels kept", "resetchannels &foo:1", []sub{{2, "subscribe", "foo:1", false, false, false}}, []string{"allchannels"}},
		{"channel kept by a glob", "&foo:1 &bar:* &orders", []sub{
			{2, "subscribe", "foo:1", false, false, false}, {2, "psubscribe", "bar:*", false, false, false}, {2, "ssubscribe", "orders", true, false, false},
		}, []string{"resetchannels", "&foo:*", "&bar:*"}},
		{"pattern matched literally", "&bar:*", []sub{{2, "psubscribe", "bar:*", true, false, false}}, []string{"resetchannels", "&bar*"}},
		{"channel of another selector", "&a (+ping &b)", []sub{{2, "subscribe", "a", false, false, false}}, []string{"resetchannels", "clearselectors", "(&a)"}},
		{"selector with every channel", "&a", []sub{{3, "subscribe", "a", false, false, false}}, []string{"resetchannels", "(&*)"}},
		{"off keeps channels", "&a", []sub{{2, "subscribe", "a", false, false, false}}, []string{"off"}},
		{"unsubscribed first", "&a", []sub{{3, "subscribe", "a", false, false, true}}, []string{"resetchannels"}},
	} {
		for _, loops := range []int{2, -1} { // two event loops, goroutines
			t.Run(fmt.Sprintf("%s/loops=%d", tc.name, loops), func(t *testing.T) {
				e := startServer(t, func(c *Config) { c.EventLoops = loops })
				adm := e.aclConn(2)
				adm.do("+OK\r\n", append([]string{"ACL", "SETUSER", "ps", "on", "nopass", "+@all", "~*"}, strings.Fields(tc.channels)...)...)
				conns := make([]*aclConn, len(tc.subs))
				for i, s := range tc.subs {
					c := e.aclConn(s.proto)
					c.do("+OK\r\n", "AUTH", "ps", "x")
					if !s.notPubsub {
						c.do(subReply(s.proto, s.cmd, s.name, 1), s.cmd, s.name)
					}
					if s.unsubAfter {
						c.do(subReply(s.proto, "un"+s.cmd, s.name, 0), "un"+s.cmd, s.name)
					}
					conns[i] = c
				}
				adm.do("+OK\r\n", append([]string{"ACL", "SETUSER", "ps"}, tc.change...)...)
				for i, s := range tc.subs {
					if s.closed {
						conns[i].expectClosed()
					}
				}
				for i, s := range tc.subs {
					switch {
					case s.closed:
					case s.notPubsub || s.unsubAfter:
						conns[i].do("+PONG\r\n", "PING")
					default:
						conns[i].alive(s.proto)
					}
				}
				adm.do("*0\r\n", "ACL", "LOG") // Redis logs nothing for it
			})
		}
	}
}

// TestACLRevokeOwnSubscription: a subscriber (RESP3) that takes its own
// channel away gets the OK, then is closed. redis-server 7.0.15 crashes
// there (it frees the client running the command); Redis's later
// versions close it after the reply.
func TestACLRevokeOwnSubscription(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			e.aclConn(2).do("+OK\r\n", "ACL", "SETUSER", "ps", "on", "nopass", "+@all", "~*", "&a")
			c := e.aclConn(3)
			c.do("+OK\r\n", "AUTH", "ps", "x")
			c.do(subReply(3, "subscribe", "a", 1), "SUBSCRIBE", "a")
			c.do("+OK\r\n", "ACL", "SETUSER", "ps", "resetchannels")
			c.expectClosed()
		})
	}
}

// TestACLDeleteClosesClients: ACL DELUSER closes every connection of the
// users it deletes at once, subscribed or not, in MULTI or not, with
// nothing sent; the one that runs it gets its reply first; the default
// user's subscribers are closed by an ACL SETUSER default that takes
// their channel away (redis-server 7.0.15's replies).
func TestACLDeleteClosesClients(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			adm := e.aclConn(2)
			adm.do("+OK\r\n", "ACL", "SETUSER", "ps", "on", "nopass", "+@all", "~*", "&a")
			var victims []*aclConn
			for _, setup := range [][]string{{"PING"}, {"SUBSCRIBE", "a"}, {"MULTI"}, {"PING"}} {
				c := e.aclConn(2)
				c.do("+OK\r\n", "AUTH", "ps", "x")
				c.send(setup...)
				c.skipUntil("\r\n")
				if setup[0] == "SUBSCRIBE" {
					c.skipUntil(":1\r\n")
				}
				victims = append(victims, c)
			}
			self := e.aclConn(2)
			self.do("+OK\r\n", "AUTH", "ps", "x")
			self.do(":1\r\n", "ACL", "DELUSER", "ps", "nosuch")
			self.expectClosed()
			for _, c := range victims {
				c.expectClosed()
			}
			adm.do("$-1\r\n", "ACL", "GETUSER", "ps")

			d := e.aclConn(2)
			d.do(subReply(2, "subscribe", "zz", 1), "SUBSCRIBE", "zz")
			adm.do("+OK\r\n", "ACL", "SETUSER", "default", "resetchannels")
			d.expectClosed()
			adm.do("*0\r\n", "ACL", "LOG")
		})
	}
}

// TestACLLoadClosesClients: ACL LOAD closes the connections of every user
// but the default one, the one running it after its OK; the default
// user's subscribers stay whatever channels the file gives it, as
// redis-server 7.0.15 keeps them.
func TestACLLoadClosesClients(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "users.acl")
			write := func(s string) {
				if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("user default on nopass ~* &* +@all\nuser ps on nopass ~* &a +@all\n")
			e := startServer(t, func(c *Config) { c.EventLoops = loops; c.ACLFile = file })
			adm := e.aclConn(2)
			d := e.aclConn(2)
			d.do(subReply(2, "subscribe", "zz", 1), "SUBSCRIBE", "zz")
			n := e.aclConn(2)
			n.do("+OK\r\n", "AUTH", "ps", "x")
			s := e.aclConn(3)
			s.do("+OK\r\n", "AUTH", "ps", "x")
			s.do(subReply(3, "subscribe", "a", 1), "SUBSCRIBE", "a")
			write("user default on nopass ~* resetchannels &q +@all\nuser ps on nopass ~* &a +@all\n")
			adm.do("+OK\r\n", "ACL", "LOAD")
			n.expectClosed()
			s.expectClosed()
			d.alive(2)
			adm.do("+PONG\r\n", "PING")
			self := e.aclConn(2)
			self.do("+OK\r\n", "AUTH", "ps", "x")
			self.do("+OK\r\n", "ACL", "LOAD")
			self.expectClosed()
			d.alive(2)
		})
	}
}

// TestACLPubsubDefault: acl-pubsub-default is a CONFIG parameter (and
// Config.ACLPubsubDefault at start): users, selectors and "reset" created
// afterwards get every channel or none, existing users keep theirs, the
// ACL file's users get it when they are read (redis-server 7.0.15's
// replies).
func TestACLPubsubDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.acl")
	if err := os.WriteFile(file, []byte("user ps on nopass ~* +@all\nuser q on nopass resetchannels (+get)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startServer(t, func(c *Config) { c.ACLFile = file })
	c := e.aclConn(2)
	bulk := func(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
	list := func(lines ...string) string {
		out := fmt.Sprintf("*%d\r\n", len(lines))
		for _, l := range lines {
			out += bulk(l)
		}
		return out
	}
	const def = "user default on nopass ~* &* +@all"
	errAfterAll := "-ERR Error in ACL SETUSER modifier '%s': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels\r\n"
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"ACL", "LIST"}, list(def, "user ps on nopass ~* resetchannels +@all", "user q on nopass resetchannels -@all (resetchannels -@all +get)")},
		{[]string{"CONFIG", "GET", "acl-pubsub-default"}, "*2\r\n" + bulk("acl-pubsub-default") + bulk("resetchannels")},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", "foo"}, "-ERR CONFIG SET failed (possibly related to argument 'acl-pubsub-default') - argument(s) must be one of the following: allchannels, resetchannels\r\n"},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", ""}, "-ERR CONFIG SET failed (possibly related to argument 'acl-pubsub-default') - argument(s) must be one of the following: allchannels, resetchannels\r\n"},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", "allchannels", "acl-pubsub-default", "resetchannels"}, "-ERR CONFIG SET failed (possibly related to argument 'acl-pubsub-default') - duplicate parameter\r\n"},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", "AllChannels"}, "+OK\r\n"},
		{[]string{"CONFIG", "GET", "acl-pubsub-default"}, "*2\r\n" + bulk("acl-pubsub-default") + bulk("allchannels")},
		{[]string{"ACL", "SETUSER", "u1"}, "+OK\r\n"},
		{[]string{"ACL", "GETUSER", "u1"}, "*12\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$9\r\npasswords\r\n*0\r\n$8\r\ncommands\r\n$5\r\n-@all\r\n$4\r\nkeys\r\n$0\r\n\r\n$8\r\nchannels\r\n$2\r\n&*\r\n$9\r\nselectors\r\n*0\r\n"},
		{[]string{"ACL", "SETUSER", "u2", "&x"}, fmt.Sprintf(errAfterAll, "&x")},
		{[]string{"ACL", "SETUSER", "u4", "(&x)"}, fmt.Sprintf(errAfterAll, "(&x)")},
		{[]string{"ACL", "SETUSER", "u4", "(resetchannels &x)"}, "+OK\r\n"},
		{[]string{"ACL", "SETUSER", "u3", "resetchannels", "(+get)"}, "+OK\r\n"},
		{[]string{"ACL", "LIST"}, list(def, "user ps on nopass ~* resetchannels +@all", "user q on nopass resetchannels -@all (resetchannels -@all +get)",
			"user u1 off &* -@all", "user u3 off resetchannels -@all (&* -@all +get)", "user u4 off &* -@all (resetchannels &x -@all)")},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", "resetchannels"}, "+OK\r\n"},
		{[]string{"ACL", "SETUSER", "u1", "reset"}, "+OK\r\n"},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", "allchannels"}, "+OK\r\n"},
		{[]string{"ACL", "SETUSER", "u3", "reset"}, "+OK\r\n"},
		{[]string{"ACL", "GETUSER", "u3"}, "*12\r\n$5\r\nflags\r\n*2\r\n$3\r\noff\r\n$16\r\nsanitize-payload\r\n$9\r\npasswords\r\n*0\r\n$8\r\ncommands\r\n$5\r\n-@all\r\n$4\r\nkeys\r\n$0\r\n\r\n$8\r\nchannels\r\n$2\r\n&*\r\n$9\r\nselectors\r\n*0\r\n"},
		{[]string{"ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "+@all"}, "+OK\r\n"},
		{[]string{"SUBSCRIBE", "foo"}, subReply(2, "subscribe", "foo", 1)},
		{[]string{"UNSUBSCRIBE"}, subReply(2, "unsubscribe", "foo", 0)},
		{[]string{"ACL", "LOAD"}, "+OK\r\n"},
		{[]string{"ACL", "LIST"}, list(def, "user ps on nopass ~* &* +@all", "user q on nopass resetchannels -@all (&* -@all +get)")},
		{[]string{"CONFIG", "SET", "acl-pubsub-default", "resetchannels"}, "+OK\r\n"},
		{[]string{"ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "+@all"}, "+OK\r\n"},
		{[]string{"SUBSCRIBE", "foo"}, "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"},
	} {
		c.do(st.want, st.args...)
	}

	// at start: the file's users get the configured default
	e2 := startServer(t, func(c *Config) { c.ACLFile = file; c.ACLPubsubDefault = "allchannels" })
	e2.aclConn(2).do(list(def, "user ps on nopass ~* &* +@all", "user q on nopass resetchannels -@all (&* -@all +get)"), "ACL", "LIST")
	cfg := DefaultConfig()
	cfg.ACLPubsubDefault = "some"
	cfg.Logger = testLogger(t)
	if srv, err := New(cfg); err == nil || !strings.Contains(err.Error(), "acl-pubsub-default") {
		if srv != nil {
			srv.Close()
		}
		t.Errorf("New with acl-pubsub-default %q: %v, want an error", cfg.ACLPubsubDefault, err)
	}
}
