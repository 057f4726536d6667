//go:build linux

package kv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holdEnv is a server with one event loop (publishers and subscriber on
// it) and a subscriber to ch in RESP proto.
type holdEnv struct {
	e    *testEnv
	loop *eventLoop
	sub  *rawConn
	br   *bufio.Reader
	c    *Client // the subscriber's
}

func startHoldEnv(t *testing.T, proto int, hooks *loopHooks) *holdEnv {
	t.Helper()
	// no cron: its wake-ups must not be what delivers a held message
	e := startServer(t, func(c *Config) { c.EventLoops = 1; c.cronEvery = time.Hour })
	if len(e.srv.loops) != 1 {
		t.Skip("no event loop")
	}
	h := &holdEnv{e: e, loop: e.srv.loops[0]}
	h.loop.hooks.Store(hooks)
	h.sub = e.raw()
	h.br = bufio.NewReader(h.sub.nc)
	h.sub.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if proto == 3 {
		h.sub.nc.Write([]byte("HELLO 3\r\n"))
		if v, err := readRESP(h.br); err != nil {
			t.Fatalf("HELLO 3: %q %v", v, err)
		}
	}
	h.sub.nc.Write([]byte("SUBSCRIBE ch\r\n"))
	if v, err := readRESP(h.br); err != nil || !strings.Contains(v, "subscribe") {
		t.Fatalf("SUBSCRIBE: %q %v", v, err)
	}
	e.srv.mu.Lock()
	for _, c := range e.srv.clients {
		if c.nc.RemoteAddr().String() == h.sub.nc.LocalAddr().String() {
			h.c = c
		}
	}
	e.srv.mu.Unlock()
	if h.c == nil {
		t.Fatal("the subscriber's client is not listed")
	}
	return h
}

// publishBatches has pubs connections each send batches of pipelined
// PUBLISHes ("p<publisher>-<i>") and read their replies.
func publishBatches(t *testing.T, addr string, pubs, per, pipe int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for p := 0; p < pubs; p++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(nc)
			for i := 0; i < per; i += pipe {
				var b strings.Builder
				for j := i; j < i+pipe; j++ {
					fmt.Fprintf(&b, "PUBLISH ch p%d-%d\r\n", p, j)
				}
				if _, err := nc.Write([]byte(b.String())); err != nil {
					errs <- err
					return
				}
				nc.SetReadDeadline(time.Now().Add(30 * time.Second))
				for j := 0; j < pipe; j++ {
					if s, err := br.ReadString('\n'); err != nil || s != ":1\r\n" {
						errs <- fmt.Errorf("publisher %d: reply %q, %w", p, s, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// checkOrder checks that msgs hold each publisher's messages once, in
// order.
func checkOrder(t *testing.T, msgs []string, pubs, per int) {
	t.Helper()
	next := make([]int, pubs)
	for _, m := range msgs {
		var p, i int
		if _, err := fmt.Sscanf(m, "p%d-%d", &p, &i); err != nil || p < 0 || p >= pubs {
			t.Fatalf("message %q", m)
		}
		if i != next[p] {
			t.Fatalf("publisher %d: message %d after %d", p, i, next[p]-1)
		}
		next[p]++
	}
	for p, n := range next {
		if n != per {
			t.Fatalf("publisher %d: %d messages, want %d", p, n, per)
		}
	}
}

// TestPushesHeldUntilIdle has pipelining publishers on the subscriber's
// loop, so the loop may hold the subscriber's messages (its passes serve
// several publishers and find more ready), or does (holdAhead), and checks at each point where the loop is
// about to wait for events that it holds nothing and every mailbox is
// empty: a held message never waits for the loop's next wake-up. Every
// pass must also keep to pushHoldPasses. The last batch's messages arrive
// although nothing follows them.
func TestPushesHeldUntilIdle(t *testing.T) {
	for _, tc := range []struct {
		name            string
		proto           int
		pubs, per, pipe int
		// ahead holds as if each pass found more work (holdAhead): the
		// loop holds for sure, and must send what it holds before it waits
		ahead bool
	}{
		{"resp2 one publisher", 2, 1, 64, 16, false},
		{"resp2 four publishers", 2, 4, 400, 16, false},
		{"resp3 four publishers", 3, 4, 400, 16, false},
		{"resp2 unpipelined", 2, 2, 50, 1, false},
		{"resp2 one publisher held", 2, 1, 64, 16, true},
		{"resp2 four publishers held", 2, 4, 400, 16, true},
		{"resp3 four publishers held", 3, 4, 400, 16, true},
		{"resp3 unpipelined held", 3, 2, 50, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var idleLooks, stuck, overPasses atomic.Int64
			hooks := &loopHooks{
				holdAhead: tc.ahead,
				idle: func(l *eventLoop) {
					idleLooks.Add(1)
					if len(l.held) > 0 {
						stuck.Add(1)
					}
					for _, c := range l.clients {
						if c == nil {
							continue
						}
						c.mail.mu.Lock()
						if len(c.mail.buf) > 0 {
							stuck.Add(1)
						}
						c.mail.mu.Unlock()
					}
				},
				pass: func(l *eventLoop) {
					if l.heldPasses > pushHoldPasses {
						overPasses.Add(1)
					}
				},
			}
			h := startHoldEnv(t, tc.proto, hooks)
			publishBatches(t, h.e.addr, tc.pubs, tc.per, tc.pipe)
			msgs, _ := readPushes(t, h.sub.nc, h.br, tc.proto, tc.pubs*tc.per)
			checkOrder(t, msgs, tc.pubs, tc.per)
			if holds := h.loop.holds.Load(); tc.ahead && holds == 0 {
				t.Fatal("the loop never held the subscriber's messages")
			} else if !tc.ahead && tc.pubs == 1 && holds > 0 {
				// one client ready per pass: nothing to wait for
				t.Fatalf("the loop held %d times for one publisher", holds)
			}
			// the loop waits for events again once everything is out
			h.sub.roundTrip("PING\r\n", map[int]string{2: "*2\r\n$4\r\npong\r\n$0\r\n\r\n", 3: "+PONG\r\n"}[tc.proto])
			if idleLooks.Load() == 0 {
				t.Fatal("the loop never waited")
			}
			if n := stuck.Load(); n > 0 {
				t.Fatalf("%d times the loop waited for events with messages held", n)
			}
			if n := overPasses.Load(); n > 0 {
				t.Fatalf("%d passes held messages longer than %d passes", n, pushHoldPasses)
			}
		})
	}
}

// TestReplyNotHeldBehindPushes holds a subscriber's messages for as long
// as it takes (holdAlways), then has the subscriber send commands: each
// gets the messages published before it, then its reply, in the pass
// that ran it; in RESP3 it also publishes to itself, which leaves a
// message in its mailbox behind its unsent reply at the end of the pass.
// After every pass no client has unsent output but one whose socket is
// full.
func TestReplyNotHeldBehindPushes(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			var unsent atomic.Int64
			hooks := &loopHooks{
				holdAlways: true,
				pass: func(l *eventLoop) {
					for _, c := range l.clients {
						if c != nil && !c.waitingOut && c.wpos < len(c.W.B) {
							unsent.Add(1)
						}
					}
				},
			}
			h := startHoldEnv(t, proto, hooks)
			pong := map[int]string{2: "*2\r\n$4\r\npong\r\n$0\r\n\r\n", 3: "+PONG\r\n"}[proto]
			const per = 40
			for round := 0; round < 3; round++ {
				publishBatches(t, h.e.addr, 1, per, 8)
				// every message is published and held: the publisher
				// has its replies, written after the pass held them
				h.c.mail.mu.Lock()
				held := strings.Count(string(h.c.mail.buf), "message")
				h.c.mail.mu.Unlock()
				if held != per {
					t.Fatalf("round %d: %d messages held, want %d", round, held, per)
				}
				h.sub.nc.Write([]byte("PING\r\n"))
				msgs, pongs := readPushes(t, h.sub.nc, h.br, proto, per)
				if pongs != 0 {
					t.Fatalf("round %d: PING answered before the messages", round)
				}
				for i, m := range msgs {
					if m != fmt.Sprintf("p0-%d", i) {
						t.Fatalf("round %d: message %d is %q", round, i, m)
					}
				}
				h.sub.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				got := make([]byte, len(pong))
				if _, err := io.ReadFull(h.br, got); err != nil || string(got) != pong {
					t.Fatalf("round %d: reply %q (%v), want %q", round, got, err, pong)
				}
			}
			if proto == 3 {
				// a message the subscriber publishes to itself is in its
				// mailbox when the pass ends, with the reply unsent: it
				// goes out with the reply, not held
				h.sub.nc.Write([]byte("PUBLISH ch self\r\n"))
				h.sub.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				var got []string
				for len(got) < 2 {
					v, err := readRESP(h.br)
					if err != nil {
						t.Fatalf("PUBLISH to itself: %q %v", got, err)
					}
					got = append(got, v)
				}
				// the message first, then the count, as redis-server
				if !strings.Contains(got[0], "self") || got[1] != ":1\r\n" {
					t.Fatalf("PUBLISH to itself: %q, want the message, then :1", got)
				}
			}
			if n := unsent.Load(); n > 0 {
				t.Fatalf("%d times a pass ended with output unsent", n)
			}
		})
	}
}

// TestPassMailHolds runs passMail on a loop without sockets, as if every
// pass served two clients and found more work ahead (holdAhead): a
// push-only client's mailbox is held for pushHoldPasses passes at most,
// and not at all once it reaches pushHoldMax, when the client has a reply
// unsent, waits for its socket, or is closing.
func TestPassMailHolds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		msg       int  // bytes published to the client each pass
		reply     bool // the client has a reply to send
		waiting   bool // its socket is full
		closing   bool
		wantHolds int // passes its mailbox is held before it is delivered
	}{
		{name: "small messages", msg: 100, wantHolds: pushHoldPasses},
		{name: "reaches the size", msg: pushHoldMax/3 + 1, wantHolds: 2},
		{name: "one big message", msg: pushHoldMax, wantHolds: 0},
		{name: "reply unsent", msg: 100, reply: true},
		{name: "socket full", msg: 100, waiting: true},
		{name: "closing", msg: 100, closing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &eventLoop{}
			l.hooks.Store(&loopHooks{holdAhead: true})
			// a server of its own: delivery notes the client's memory
			c := &Client{srv: &Server{}, fd: 7, waitingOut: tc.waiting, closing: tc.closing}
			l.setClient(c)
			c.mail.loop = l
			if tc.reply {
				c.W.B = append(c.W.B, "+OK\r\n"...)
			}
			sent, held := len(c.W.B), 0
			for pass := 0; pass <= pushHoldPasses+1; pass++ {
				// a publish: the mailbox grows, the client is posted once
				c.mail.mu.Lock()
				c.mail.buf = append(c.mail.buf, strings.Repeat("m", tc.msg)...)
				posted := c.mail.queued
				c.mail.queued = true
				c.mail.mu.Unlock()
				if !posted {
					l.mail = append(l.mail, c)
					l.hasMail.Store(true)
				}
				l.passMail(2, nil)
				if len(l.held) > 0 {
					held++
					if len(c.W.B) != sent {
						t.Fatalf("pass %d: held, with %d bytes moved to the replies", pass, len(c.W.B)-sent)
					}
					continue
				}
				if c.mail.queued || len(c.mail.buf) > 0 {
					t.Fatalf("pass %d: not held, and the mailbox is not taken", pass)
				}
				if len(l.touched) == 0 && !tc.waiting {
					t.Fatalf("pass %d: delivered, and the client is not to be written", pass)
				}
				break
			}
			if held != tc.wantHolds {
				t.Fatalf("held in %d passes, want %d", held, tc.wantHolds)
			}
		})
	}
}
