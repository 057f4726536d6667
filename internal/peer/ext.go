package peer

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// The cluster bus also carries the messages of layers built on the peer
// (the execution layer, internal/peerexec): they travel over the same
// memberlist connections as the protocol's, marked by a first byte that no
// JSON protocol message starts with, and go to the handler the layer set
// instead of the node. The cluster layer never reads them.

// extMarker starts an extension message on the bus (protocol messages
// are JSON objects and start with '{').
const extMarker = 0x01

// ExtHandler receives an extension message; b is the handler's to keep.
// It runs on memberlist's goroutines and must not block for long.
type ExtHandler func(b []byte)

type extHook struct{ h atomic.Pointer[ExtHandler] }

// SetExtHandler sets the receiver of extension messages (nil drops them).
func (c *Cluster) SetExtHandler(h ExtHandler) {
	if h == nil {
		c.ext.h.Store(nil)
		return
	}
	c.ext.h.Store(&h)
}

// receiveExt hands an extension message to the handler, or drops it.
func (c *Cluster) receiveExt(b []byte) {
	if h := c.ext.h.Load(); h != nil {
		(*h)(append([]byte(nil), b...)) // memberlist reuses its buffer
	}
}

// SendExt sends an extension message to one peer over its reliable
// queue (TCP, in order, one queue per peer: a hanging peer delays only
// itself). A peer memberlist does not know is skipped; the layer above
// retries what must arrive.
func (c *Cluster) SendExt(to NodeID, b []byte) {
	g := c.gossip
	if g == nil {
		return
	}
	msg := make([]byte, 0, len(b)+1)
	msg = append(append(msg, extMarker), b...)
	g.memMu.Lock()
	var mem *memberlist.Node
	for _, m := range g.targets(time.Now()) { // memberlist's members, and those it declared dead lately
		if nodeOfMember(m.Name) == to {
			m := m
			mem = &m
			break
		}
	}
	g.memMu.Unlock()
	if mem == nil {
		return
	}
	g.sendReliable(mem.Name, msg)
}

// RoutingSnapshot identifies the current routing snapshot (slot owners,
// cluster state): equal values mean SlotOwner answers as before, so a
// layer above can skip reading the 16384 slots again.
func (c *Cluster) RoutingSnapshot() any { return c.routes.Load() }
