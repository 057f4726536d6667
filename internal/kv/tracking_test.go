package kv

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// respConn is a raw connection that reads one RESP value at a time, as
// its bytes (pushes included, which go-redis does not surface).
type respConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (e *testEnv) resp() *respConn {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &respConn{t: e.t, nc: nc, br: bufio.NewReader(nc)}
}

// do sends a command and returns its reply.
func (r *respConn) do(args ...string) string {
	r.t.Helper()
	r.send(args...)
	return r.next()
}

func (r *respConn) send(args ...string) {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := r.nc.Write([]byte(b.String())); err != nil {
		r.t.Fatal(err)
	}
}

// next reads one value.
func (r *respConn) next() string {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	v, err := readRESP(r.br)
	if err != nil {
		r.t.Fatalf("read: %v (so far %q)", err, v)
	}
	return v
}

func readRESP(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return line, err
	}
	if len(line) < 3 {
		return line, fmt.Errorf("short line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '$', '=':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return line, nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(br, buf); err != nil {
			return line, err
		}
		return line + string(buf), nil
	case '*', '>', '~', '%':
		n, _ := strconv.Atoi(body)
		if line[0] == '%' {
			n *= 2
		}
		out := line
		for i := 0; i < n; i++ {
			v, err := readRESP(br)
			out += v
			if err != nil {
				return out, err
			}
		}
		return out, nil
	}
	return line, nil
}

func ioReadFull(br *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := br.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// inv is the RESP3 push of an invalidation of keys.
func inv(keys ...string) string {
	s := ">2\r\n$10\r\ninvalidate\r\n" + fmt.Sprintf("*%d\r\n", len(keys))
	for _, k := range keys {
		s += fmt.Sprintf("$%d\r\n%s\r\n", len(k), k)
	}
	return s
}

// TestClientTracking covers the default mode in RESP3, NOLOOP, OPTIN,
// OPTOUT, BCAST prefixes, RESP2 redirection, FLUSHALL, expiry and the
// table's limit, on event loops and on goroutines.
func TestClientTracking(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			a, b := e.resp(), e.resp()
			a.do("HELLO", "3")
			want := func(got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			}
			want(a.do("CLIENT", "TRACKING", "ON"), "+OK\r\n")
			want(a.do("CLIENT", "GETREDIR"), ":0\r\n")
			want(a.do("GET", "k"), "_\r\n")
			want(b.do("SET", "k", "1"), "+OK\r\n")
			want(a.next(), inv("k"))
			// told once: the key is forgotten until read again
			want(b.do("SET", "k", "2"), "+OK\r\n")
			want(a.do("PING"), "+PONG\r\n")
			// a client's own write is sent to it too, after the reply
			want(a.do("MGET", "k", "k2"), "*2\r\n$1\r\n2\r\n_\r\n")
			want(a.do("SET", "k", "3"), "+OK\r\n")
			want(a.next(), inv("k"))
			want(b.do("SET", "k2", "x"), "+OK\r\n")
			want(a.next(), inv("k2"))

			// NOLOOP: not for its own writes
			want(a.do("CLIENT", "TRACKING", "ON", "NOLOOP"), "+OK\r\n")
			want(a.do("GET", "k"), "$1\r\n3\r\n")
			want(a.do("SET", "k", "4"), "+OK\r\n")
			want(a.do("PING"), "+PONG\r\n")
			want(a.do("CLIENT", "TRACKING", "OFF"), "+OK\r\n")

			// OPTIN: only the command after CLIENT CACHING YES
			want(a.do("CLIENT", "TRACKING", "ON", "OPTIN"), "+OK\r\n")
			want(a.do("CLIENT", "CACHING", "NO"), "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n")
			want(a.do("GET", "o1"), "_\r\n")
			want(a.do("CLIENT", "CACHING", "YES"), "+OK\r\n")
			want(a.do("CLIENT", "TRACKINGINFO"), "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n")
			want(a.do("GET", "o2"), "_\r\n")
			want(a.do("GET", "o3"), "_\r\n")
			want(b.do("MSET", "o1", "1", "o2", "2", "o3", "3"), "+OK\r\n")
			want(a.next(), inv("o2"))
			want(a.do("PING"), "+PONG\r\n")
			want(a.do("CLIENT", "TRACKING", "OFF"), "+OK\r\n")

			// OPTOUT: every read but the one after CLIENT CACHING NO
			want(a.do("CLIENT", "TRACKING", "ON", "OPTOUT"), "+OK\r\n")
			want(a.do("CLIENT", "CACHING", "NO"), "+OK\r\n")
			want(a.do("GET", "o1"), "$1\r\n1\r\n")
			want(a.do("GET", "o2"), "$1\r\n2\r\n")
			want(b.do("DEL", "o1", "o2"), ":2\r\n")
			want(a.next(), inv("o2"))
			want(a.do("CLIENT", "TRACKING", "ON", "OPTIN"), "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n")
			want(a.do("CLIENT", "TRACKING", "OFF"), "+OK\r\n")
			want(a.do("CLIENT", "GETREDIR"), ":-1\r\n")

			// BCAST with prefixes: every change under them, gathered per
			// command, one message per prefix
			want(a.do("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "u:", "PREFIX", "u"), "-ERR Prefix 'u:' overlaps with another provided prefix 'u'. Prefixes for a single client must not overlap.\r\n")
			want(a.do("CLIENT", "TRACKING", "ON", "PREFIX", "u:"), "-ERR PREFIX option requires BCAST mode to be enabled\r\n")
			want(a.do("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"), "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n")
			want(a.do("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "u:", "PREFIX", "v:"), "+OK\r\n")
			want(b.do("MSET", "u:1", "a", "x", "b", "u:2", "c"), "+OK\r\n")
			want(a.next(), inv("u:1", "u:2"))
			want(b.do("SET", "v:1", "a"), "+OK\r\n")
			want(a.next(), inv("v:1"))
			want(b.do("SET", "w", "a"), "+OK\r\n")
			want(a.do("PING"), "+PONG\r\n")
			want(a.do("CLIENT", "TRACKING", "ON"), "-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.\r\n")

			// FLUSHALL: a null invalidation
			want(b.do("FLUSHALL"), "+OK\r\n")
			want(a.next(), ">2\r\n$10\r\ninvalidate\r\n_\r\n")
			want(a.do("CLIENT", "TRACKING", "OFF"), "+OK\r\n")

			// expiry
			want(a.do("CLIENT", "TRACKING", "ON"), "+OK\r\n")
			want(b.do("SET", "e", "1", "PX", "100"), "+OK\r\n")
			want(a.do("GET", "e"), "$1\r\n1\r\n")
			e.clock.Advance(time.Second)
			if n := e.srv.ExpireNow(); n != 1 {
				t.Fatalf("expired %d keys", n)
			}
			want(a.next(), inv("e"))

			// the table's limit: a dropped key is invalidated
			want(b.do("CONFIG", "SET", "tracking-table-max-keys", "1"), "+OK\r\n")
			want(a.do("GET", "x"), "_\r\n")
			want(a.do("GET", "y"), "_\r\n")
			if got := a.next(); got != inv("x") && got != inv("y") {
				t.Errorf("got %q, want the invalidation of x or y", got)
			}
			want(b.do("CONFIG", "SET", "tracking-table-max-keys", "1000000"), "+OK\r\n")
			want(a.do("CLIENT", "TRACKING", "OFF"), "+OK\r\n")

			// RESP2: redirected to a client subscribed to __redis__:invalidate
			r := e.resp()
			id := strings.TrimSuffix(strings.TrimPrefix(r.do("CLIENT", "ID"), ":"), "\r\n")
			want(r.do("SUBSCRIBE", "__redis__:invalidate"), "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n")
			c2 := e.resp()
			want(c2.do("CLIENT", "TRACKING", "ON", "REDIRECT", "999999"), "-ERR The client ID you want redirect to does not exist\r\n")
			want(c2.do("CLIENT", "TRACKING", "ON", "REDIRECT", id), "+OK\r\n")
			want(c2.do("CLIENT", "GETREDIR"), ":"+id+"\r\n")
			want(c2.do("GET", "r"), "$-1\r\n")
			want(b.do("SET", "r", "1"), "+OK\r\n")
			want(r.next(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nr\r\n")
			want(b.do("FLUSHALL"), "+OK\r\n")
			want(r.next(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n")
			// the redirection target goes away: the tracking client learns
			// it from TRACKINGINFO (a RESP2 client gets no push)
			want(c2.do("GET", "r"), "$-1\r\n")
			r.nc.Close()
			waitUntil(t, "target gone", func() bool { return e.srv.clientByID(mustAtoi(t, id)) == nil })
			want(b.do("SET", "r", "2"), "+OK\r\n")
			want(c2.do("CLIENT", "TRACKINGINFO"), "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:"+id+"\r\n$8\r\nprefixes\r\n*0\r\n")
		})
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTrackingRedirectRESP3: a RESP3 redirection target gets pushes,
// and a RESP3 tracking client whose target left gets
// tracking-redir-broken.
func TestTrackingRedirectRESP3(t *testing.T) {
	e := startServer(t, nil)
	target, a, b := e.resp(), e.resp(), e.resp()
	target.do("HELLO", "3")
	id := strings.TrimSuffix(strings.TrimPrefix(target.do("CLIENT", "ID"), ":"), "\r\n")
	a.do("HELLO", "3")
	if got := a.do("CLIENT", "TRACKING", "ON", "REDIRECT", id); got != "+OK\r\n" {
		t.Fatal(got)
	}
	a.do("GET", "k")
	b.do("SET", "k", "1")
	if got := target.next(); got != inv("k") {
		t.Errorf("target got %q", got)
	}
	a.do("GET", "k")
	target.nc.Close()
	waitUntil(t, "target gone", func() bool { return e.srv.clientByID(mustAtoi(t, id)) == nil })
	b.do("SET", "k", "2")
	if got, want := a.next(), ">2\r\n$21\r\ntracking-redir-broken\r\n:"+id+"\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if n, _, _, _ := e.srv.trackingInfo(); n != 1 {
		t.Errorf("%d tracking clients", n)
	}
	a.nc.Close()
	waitUntil(t, "tracking client gone", func() bool { n, _, _, _ := e.srv.trackingInfo(); return n == 0 })
}

// TestReplyOffKeepsPushes: CLIENT REPLY OFF drops replies, not pushes:
// RESP3 (un)subscribe confirmations, messages and invalidations still
// come, as in Redis 7 (unit/pubsub "PubSub messages with CLIENT REPLY
// OFF").
func TestReplyOffKeepsPushes(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			a, b := e.resp(), e.resp()
			a.do("HELLO", "3")
			a.send("CLIENT", "REPLY", "OFF")
			if got, want := a.do("SUBSCRIBE", "ch"), ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			if got := b.do("PUBLISH", "ch", "hi"); got != ":1\r\n" {
				t.Fatalf("publish: %q", got)
			}
			if got, want := a.next(), ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			a.send("PING") // no reply
			if got, want := a.do("UNSUBSCRIBE", "ch"), ">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			a.send("CLIENT", "TRACKING", "ON")
			a.send("GET", "k")
			a.send("CLIENT", "REPLY", "ON")
			if got := a.do("PING"); got != "+OK\r\n" {
				t.Fatalf("CLIENT REPLY ON: %q", got)
			}
			if got := a.next(); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
			b.do("SET", "k", "1")
			if got := a.next(); got != inv("k") {
				t.Errorf("invalidation: %q", got)
			}
			// RESP2: the confirmation of a subscription comes too
			r2 := e.resp()
			r2.send("CLIENT", "REPLY", "OFF")
			if got, want := r2.do("PSUBSCRIBE", "*"), "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}
