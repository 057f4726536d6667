package server

import (
	"sync"
	"time"
)

// heartbeats keeps one TTL timer per node while this server is leader.
// Timers live only in the leader's memory: a new leader starts every ready
// node with a grace period instead of trusting old deadlines.
type heartbeats struct {
	onExpire func(nodeID string)

	mu     sync.Mutex
	active bool                   // guarded by mu; false when not leader
	timers map[string]*time.Timer // guarded by mu
}

func newHeartbeats(onExpire func(nodeID string)) *heartbeats {
	return &heartbeats{onExpire: onExpire, timers: map[string]*time.Timer{}}
}

// start arms a timer of ttl for every node given (on gaining leadership).
// Nodes already heartbeating keep their fresher timer.
func (h *heartbeats) start(nodeIDs []string, ttl time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active = true
	for _, id := range nodeIDs {
		if _, ok := h.timers[id]; !ok {
			h.resetLocked(id, ttl)
		}
	}
}

// stop disarms every timer (on losing leadership or shutting down).
func (h *heartbeats) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active = false
	for id, t := range h.timers {
		t.Stop()
		delete(h.timers, id)
	}
}

// reset (re)arms a node's timer. It is a no-op when not leader.
func (h *heartbeats) reset(nodeID string, ttl time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active {
		h.resetLocked(nodeID, ttl)
	}
}

func (h *heartbeats) resetLocked(nodeID string, ttl time.Duration) {
	if t, ok := h.timers[nodeID]; ok {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(ttl, func() {
		h.mu.Lock()
		// A reset or stop after the timer fired replaced or removed it.
		current := h.active && h.timers[nodeID] == t
		if current {
			delete(h.timers, nodeID)
		}
		h.mu.Unlock()
		if current {
			h.onExpire(nodeID)
		}
	})
	h.timers[nodeID] = t
}

// remove forgets a node's timer.
func (h *heartbeats) remove(nodeID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.timers[nodeID]; ok {
		t.Stop()
		delete(h.timers, nodeID)
	}
}

// count returns the number of armed timers.
func (h *heartbeats) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.timers)
}
