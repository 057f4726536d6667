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
func (c *Cluster) sendReliable(name string, b []byte) {
	c.send.mu.Lock()
	if c.send.m == nil {
		c.send.m = map[string]*peerSender{}
	}
	s := c.send.m[name]
	if s == nil {
		select {
		case <-c.done:
			c.send.mu.Unlock()
			return
		default:
		}
		s = &peerSender{ch: make(chan []byte, senderQueue)}
		c.send.m[name] = s
		c.wg.Add(1)
		go c.runSender(name, s)
	}
	select {
	case s.ch <- b:
	default:
		c.logger.Printf("cluster: send queue to %s full (%d messages); dropping one", name, senderQueue)
	}
	c.send.mu.Unlock()
}

func (c *Cluster) runSender(name string, s *peerSender) {
	defer c.wg.Done()
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		select {
		case <-c.done:
			return
		case b := <-s.ch:
			c.deliver(name, b)
			idle.Reset(senderIdle)
		case <-idle.C:
			c.send.mu.Lock()
			if len(s.ch) == 0 {
				delete(c.send.m, name)
				c.send.mu.Unlock()
				return
			}
			c.send.mu.Unlock()
			idle.Reset(senderIdle)
		}
	}
}

// deliver sends b to the member's current address (it may have moved
// since the message was queued); a member that left is skipped.
func (c *Cluster) deliver(name string, b []byte) {
	ml := c.ml.Load()
	c.memMu.Lock()
	mem, ok := c.members[name]
	c.memMu.Unlock()
	if ml == nil || !ok {
		return
	}
	if err := ml.SendReliable(&mem, b); err != nil {
		c.logger.Printf("cluster: send to %s: %v", name, err)
	}
}
