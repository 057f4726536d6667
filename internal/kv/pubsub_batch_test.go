package kv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSubscribersList adds and removes clients of one channel in every
// position: the list PUBLISH ranges over and the index that makes a
// removal O(1) must agree after each change.
func TestSubscribersList(t *testing.T) {
	cs := make([]*Client, 6)
	for i := range cs {
		cs[i] = &Client{id: int64(i)}
	}
	ss := &subscribers{pos: make(map[*Client]int)}
	check := func(want ...int) {
		t.Helper()
		var got []int
		for i, c := range ss.list {
			if ss.pos[c] != i {
				t.Fatalf("client %d at %d, index says %d", c.id, i, ss.pos[c])
			}
			got = append(got, int(c.id))
		}
		if len(ss.pos) != len(ss.list) {
			t.Fatalf("index holds %d clients, list %d", len(ss.pos), len(ss.list))
		}
		sort.Ints(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("subscribers %v, want %v", got, want)
		}
	}
	for _, c := range cs {
		ss.add(c)
	}
	ss.add(cs[2]) // twice: once in the list
	check(0, 1, 2, 3, 4, 5)
	ss.remove(cs[1]) // from the middle
	check(0, 2, 3, 4, 5)
	ss.remove(cs[5]) // whatever is last now
	ss.remove(cs[0]) // the first
	check(2, 3, 4)
	ss.remove(cs[0]) // not there
	check(2, 3, 4)
	ss.add(cs[1])
	check(1, 2, 3, 4)
	for _, c := range cs {
		ss.remove(c)
	}
	check()
	if ss.count() != 0 || (*subscribers)(nil).count() != 0 {
		t.Fatal("count of an empty list")
	}
}

// readPushes reads RESP2 messages ([message, channel, payload]) or RESP3
// pushes from br until it has n payloads, counting the replies to PING
// met on the way (n == 0: reads one PING reply).
func readPushes(t *testing.T, nc net.Conn, br *bufio.Reader, proto, n int) (msgs []string, pongs int) {
	t.Helper()
	head := "*3"
	if proto == 3 {
		head = ">3"
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	out := make([]string, 0, n)
	line := func() string {
		s, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		return strings.TrimSuffix(s, "\r\n")
	}
	bulk := func() string {
		h := line()
		if h[0] != '$' {
			t.Fatalf("bulk header %q", h)
		}
		l, _ := strconv.Atoi(h[1:])
		b := make([]byte, l+2)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatal(err)
		}
		return string(b[:l])
	}
	for len(out) < n || (n == 0 && pongs == 0) {
		h := line()
		if h == "+PONG" && proto == 3 {
			pongs++
			continue
		}
		if h == "*2" && proto == 2 {
			if p, e := bulk(), bulk(); p != "pong" || e != "" {
				t.Fatalf("PING's reply [%q %q]", p, e)
			}
			pongs++
			continue
		}
		if h != head {
			t.Fatalf("message %d starts %q, want %q", len(out), h, head)
		}
		if kw := bulk(); kw != "message" {
			t.Fatalf("message %d is a %q", len(out), kw)
		}
		bulk() // the channel
		out = append(out, bulk())
	}
	return out, pongs
}

// TestPublishOrderManyPublishers has publishers on every event loop send
// pipelined PUBLISHes to one subscriber, in RESP2 and RESP3: every
// message arrives once, each publisher's in the order it sent them,
// whether the subscriber's loop took them while busy (batched in its
// iteration) or was woken for them, and whether they went into an empty
// reply buffer or behind the subscriber's own replies (it PINGs
// meanwhile).
func TestPublishOrderManyPublishers(t *testing.T) {
	const pubs, per, pipe = 6, 400, 16
	const pings = 320
	pad := strings.Repeat("x", 200)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = 2 })
			sub := e.raw()
			br := bufio.NewReader(sub.nc)
			if proto == 3 {
				sub.nc.Write([]byte("HELLO 3\r\n"))
				sub.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				for { // the HELLO map ends with the modules array
					s, err := br.ReadString('\n')
					if err != nil {
						t.Fatal(err)
					}
					if s == "modules\r\n" {
						br.ReadString('\n')
						break
					}
				}
			}
			sub.roundTrip("SUBSCRIBE ch\r\n", "")
			want := map[int]string{2: "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", 3: ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"}[proto]
			got := make([]byte, len(want))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
				t.Fatalf("confirmation %q (%v), want %q", got, err, want)
			}
			var wg sync.WaitGroup
			errs := make(chan error, pubs)
			for p := 0; p < pubs; p++ {
				nc, err := net.Dial("tcp", e.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					pbr := bufio.NewReader(nc)
					for i := 0; i < per; i += pipe {
						var b strings.Builder
						for j := i; j < i+pipe; j++ {
							fmt.Fprintf(&b, "PUBLISH ch p%d-%d-%s\r\n", p, j, pad)
						}
						if _, err := nc.Write([]byte(b.String())); err != nil {
							errs <- err
							return
						}
						nc.SetReadDeadline(time.Now().Add(30 * time.Second))
						for j := 0; j < pipe; j++ {
							if s, err := pbr.ReadString('\n'); err != nil || s != ":1\r\n" {
								errs <- fmt.Errorf("publisher %d: reply %q, %w", p, s, err)
								return
							}
						}
					}
				}()
			}
			// the subscriber pings meanwhile: the messages published
			// before each PING go in front of its reply, behind the replies
			// of the PINGs before it in the same read
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < pings/pipe; i++ {
					sub.nc.Write([]byte(strings.Repeat("PING\r\n", pipe)))
					time.Sleep(time.Millisecond)
				}
			}()
			msgs, pongs := readPushes(t, sub.nc, br, proto, pubs*per)
			wg.Wait()
			for pongs < pings {
				_, n := readPushes(t, sub.nc, br, proto, 0)
				pongs += n
			}
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			next := make([]int, pubs)
			for _, m := range msgs {
				var p, i int
				if _, err := fmt.Sscanf(m, "p%d-%d-", &p, &i); err != nil || p < 0 || p >= pubs || !strings.HasSuffix(m, "-"+pad) {
					t.Fatalf("message %q", m)
				}
				if i != next[p] {
					t.Fatalf("publisher %d: message %d after %d", p, i, next[p]-1)
				}
				next[p]++
			}
		})
	}
}

// TestSubscriberOtherLoopWoken publishes from a client on one event loop
// to a subscriber on the other, one message at a time, with the
// subscriber's loop idle in between: the publisher must wake it. The
// server runs without its cron, whose wake-ups every 100 ms would deliver
// the message anyway, so without the wake-up nothing arrives.
func TestSubscriberOtherLoopWoken(t *testing.T) {
	// no cron: it wakes every loop each 100 ms, which would deliver the
	// message even when the publish does not wake the subscriber's loop
	e := startServer(t, func(c *Config) { c.EventLoops = 2; c.cronEvery = time.Hour })
	sub := e.raw()
	sub.roundTrip("SUBSCRIBE ch\r\n", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
	// connections go to the loops in turn: find a publisher on the other
	loopOf := func(addr string) *eventLoop {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		for _, c := range e.srv.clients {
			if c.nc.RemoteAddr().String() == addr {
				c.mail.mu.Lock()
				defer c.mail.mu.Unlock()
				return c.mail.loop
			}
		}
		return nil
	}
	subLoop := loopOf(sub.nc.LocalAddr().String())
	if subLoop == nil {
		t.Fatal("the subscriber is not on an event loop")
	}
	var pub *rawConn
	for i := 0; i < 4 && pub == nil; i++ {
		r := e.raw()
		r.roundTrip("PING\r\n", "+PONG\r\n")
		if l := loopOf(r.nc.LocalAddr().String()); l != nil && l != subLoop {
			pub = r
		}
	}
	if pub == nil {
		t.Fatal("no connection on the other loop")
	}
	// each message must arrive while the subscriber's loop is parked:
	// only the publish's wake-up can bring it (roundTrip waits 5 s)
	msg := "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
	for i := 0; i < 10; i++ {
		time.Sleep(2 * time.Millisecond) // past loopWait: the subscriber's loop parks
		pub.roundTrip("PUBLISH ch m\r\n", ":1\r\n")
		sub.roundTrip("", msg)
	}
}

// BenchmarkPublishOneSubscriber is PUBLISH's delivery without the
// network: one subscriber served by an event loop (never woken: the loop
// is busy), its mailbox moved into its replies every 16 messages, as a
// loop iteration does at -P 16.
func BenchmarkPublishOneSubscriber(b *testing.B) { benchPublish(b, psChannel, "bench") }

// BenchmarkPublishOnePattern is the same with one PSUBSCRIBE ben*
// subscriber (as a keyspace-notification consumer subscribes).
func BenchmarkPublishOnePattern(b *testing.B) { benchPublish(b, psPattern, "ben*") }

func benchPublish(b *testing.B, kind pubsubKind, name string) {
	cfg := DefaultConfig()
	cfg.EventLoops = -1
	cfg.ActiveExpireHz = 0
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newClient(s, nil)
	c.mail.loop = &eventLoop{s: s}
	c.subscribe(kind, [][]byte{[]byte(name)})
	c.W.B = c.W.B[:0]
	ch, msg := []byte("bench"), []byte("message-of-some-bytes")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.publish(psChannel, ch, msg) != 1 {
			b.Fatal("not delivered")
		}
		if i%16 == 15 {
			c.takeMail()
			c.W.B, c.wpos = c.W.B[:0], 0
			c.mail.loop.mail = c.mail.loop.mail[:0]
		}
	}
}

// TestPatternList subscribes and unsubscribes patterns from two clients
// in an order that removes first, middle and last entries of the list
// PUBLISH matches channels against, and checks the list against the
// registry and the receivers PUBLISH counts after every change.
func TestPatternList(t *testing.T) {
	e := startServer(t, nil)
	conf := func(kw string, counts []int, pats ...string) string {
		var b strings.Builder
		for i, p := range pats {
			fmt.Fprintf(&b, "*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n", len(kw), kw, len(p), p, counts[i])
		}
		return b.String()
	}
	check := func(pub map[string]int) {
		t.Helper()
		ps := &e.srv.ps
		ps.mu.RLock()
		var names []string
		for i, m := range ps.pats {
			if m.pat != i || ps.subs[psPattern][m.name] != m {
				t.Errorf("pattern %q at %d: index %d, registry %p, list %p", m.name, i, m.pat, ps.subs[psPattern][m.name], m)
			}
			names = append(names, m.name)
		}
		if len(names) != len(ps.subs[psPattern]) {
			t.Errorf("list %v, registry holds %d patterns", names, len(ps.subs[psPattern]))
		}
		ps.mu.RUnlock()
		for ch, want := range pub {
			if n := e.srv.publish(psChannel, []byte(ch), []byte("m")); n != want {
				t.Errorf("patterns %v: PUBLISH %s reached %d, want %d", names, ch, n, want)
			}
		}
	}
	// cmd sends req and reads until want: the messages check published
	// come first
	cmd := func(r *rawConn, req, want string) {
		t.Helper()
		r.nc.Write([]byte(req))
		r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		b := make([]byte, 1)
		for !strings.HasSuffix(string(got), want) {
			if _, err := r.nc.Read(b); err != nil {
				t.Fatalf("%q: %v (got %q)", req, err, got)
			}
			got = append(got, b[0])
		}
	}
	c1, c2 := e.raw(), e.raw()
	cmd(c1, "PSUBSCRIBE a* b* c*\r\n", conf("psubscribe", []int{1, 2, 3}, "a*", "b*", "c*"))
	cmd(c2, "PSUBSCRIBE b* d*\r\n", conf("psubscribe", []int{1, 2}, "b*", "d*"))
	check(map[string]int{"ax": 1, "bx": 2, "cx": 1, "dx": 1, "ex": 0})
	cmd(c1, "PUNSUBSCRIBE a*\r\n", conf("punsubscribe", []int{2}, "a*")) // the first
	check(map[string]int{"ax": 0, "bx": 2, "cx": 1, "dx": 1})
	cmd(c2, "PUNSUBSCRIBE d*\r\n", conf("punsubscribe", []int{1}, "d*"))
	cmd(c1, "PUNSUBSCRIBE c*\r\n", conf("punsubscribe", []int{1}, "c*"))
	check(map[string]int{"bx": 2, "cx": 0, "dx": 0})
	cmd(c1, "PSUBSCRIBE e*\r\n", conf("psubscribe", []int{2}, "e*"))
	c2.nc.Close() // a closing client's patterns go too
	waitUntil(t, "c2's patterns dropped", func() bool {
		return e.srv.publish(psChannel, []byte("bx"), []byte("m")) == 1
	})
	check(map[string]int{"bx": 1, "ex": 1, "dx": 0})
	cmd(c1, "PUNSUBSCRIBE\r\n", conf("punsubscribe", []int{1, 0}, "b*", "e*"))
	check(map[string]int{"bx": 0, "ex": 0})
}
