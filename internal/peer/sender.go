package peer

import (
	"sync"
	"time"
)

// Reliable messages (votes, FAIL, anything too big for a packet) travel
// over TCP, and a connect to a peer cut off by a partition hangs until
// memberlist's TCPTimeout. Sent one after another from the protocol's
// output, one unreachable peer would hold back a vote request or a FAIL
// to every other peer by that long, each time (a failover behind a
// partition took ~5 s instead of ~1 s). So each peer gets its own queue
// and goroutine: messages to one peer stay in order, and a slow peer
// delays only itself.

const (
	// senderQueue bounds the messages waiting for one peer; beyond it new
	// ones are dropped (the protocol repeats what matters: heartbeats,
	// election retries, push-pull of the whole view).
	senderQueue = 256
	// senderIdle is how long an idle sender goroutine lives.
	senderIdle = time.Minute
)

type peerSender struct {
	ch chan []byte
}

// senders holds the per-peer senders; the zero value is ready.
type senders struct {
	mu sync.Mutex
	m  map[string]*peerSender
}

// sendReliable queues b for the member named name.
func (g *gossip) sendReliable(name string, b []byte) {
	c := g.c
	g.send.mu.Lock()
	if g.send.m == nil {
		g.send.m = map[string]*peerSender{}
	}
	s := g.send.m[name]
	if s == nil {
		s = &peerSender{ch: make(chan []byte, senderQueue)}
		if !c.goTracked(func() { g.runSender(name, s) }) {
			g.send.mu.Unlock()
			return // closing
		}
		g.send.m[name] = s
	}
	select {
	case s.ch <- b:
	default:
		c.logger.Printf("cluster: send queue to %s full (%d messages); dropping one", name, senderQueue)
	}
	g.send.mu.Unlock()
}

func (g *gossip) runSender(name string, s *peerSender) {
	c := g.c
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		select {
		case <-c.done:
			return
		case b := <-s.ch:
			g.deliver(name, b)
			idle.Reset(senderIdle)
		case <-idle.C:
			g.send.mu.Lock()
			if len(s.ch) == 0 {
				delete(g.send.m, name)
				g.send.mu.Unlock()
				return
			}
			g.send.mu.Unlock()
			idle.Reset(senderIdle)
		}
	}
}

// deliver sends b to the member's current address (it may have moved
// since the message was queued); a member that left (memberlist
// declared it dead more than goneKeep ago, or it left for good) is
// skipped.
func (g *gossip) deliver(name string, b []byte) {
	ml := g.ml.Load()
	g.memMu.Lock()
	mem, ok := g.member(name, time.Now())
	g.memMu.Unlock()
	if ml == nil || !ok {
		return
	}
	if err := ml.SendReliable(&mem, b); err != nil {
		g.c.logger.Printf("cluster: send to %s: %v", name, err)
	}
}
