// Package peer is the decentralized side of gantry: the Redis-Cluster-style
// slot map, configuration epochs, failure reports and failover elections of
// a set of equal peers.
//
// The protocol is a pure state machine in the style of etcd-io/raft: a
// Node changes only in Tick, Step (a peer's message) and Apply (an
// operator command or a local event), time is passed in by the caller,
// and its output (messages, the state to persist) waits in Ready until
// Advance. The network (gossip through hashicorp/memberlist) and the disk
// (a Store) live outside, in Cluster, whose one owner goroutine persists
// each Ready before sending it; so every rule is tested deterministically
// with a simulated network driving the same owner code (see sim_test.go).
//
// New assembles a whole peer: the store (internal/kv), and in cluster
// mode the Cluster, the Router that routes the store's commands, and the
// store's replication driven by the node's role.
package peer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv"
)

// NumSlots is the number of hash slots, as in Redis Cluster.
const NumSlots = kv.NumSlots

// KeySlot returns the hash slot of a key with Redis's {hash tag} rule; it is
// kv's implementation, so the store and the router never disagree.
func KeySlot(key []byte) uint16 { return kv.KeySlot(key) }

// NodeID names a peer: 40 lowercase hex characters, as Redis node IDs.
type NodeID string

// SlotOwner is one slot's owner and the configuration epoch of the claim
// that made it the owner.
type SlotOwner struct {
	Node  NodeID
	Epoch uint64
}

// beats reports whether claim c replaces the current owner o: the higher
// epoch wins; on equal epochs the smaller node ID wins, so that every peer
// resolves a collision the same way whatever order the claims arrive in
// (Redis instead makes one of the colliding nodes bump its epoch; peers
// do that too, see Node.resolveCollision, this rule only makes the
// transient state converge).
func (c SlotOwner) beats(o SlotOwner) bool {
	if o.Node == "" {
		return true
	}
	if c.Epoch != o.Epoch {
		return c.Epoch > o.Epoch
	}
	return c.Node < o.Node
}

// SlotMap maps every slot to its owner. The zero value has every slot
// unassigned.
type SlotMap struct {
	owners [NumSlots]SlotOwner
	counts map[NodeID]int // slots per owner, kept with owners
	// assigned is the sum of counts (ClusterOK asks at every owner step)
	assigned int
	// byOwner caches ranges() until the next change of an owner (nil:
	// stale). Every heartbeat carries the sender's slots and every Status
	// lists everyone's, so without it each scanned all 16384 slots.
	byOwner map[NodeID][]SlotRange
	// gen changes (to a value unique in the process) whenever an owner or
	// an epoch changes: a claim applied before to the same gen changes
	// nothing again (Node.applyClaims skips it).
	gen uint64
}

var slotMapGen atomic.Uint64

// put is the one place that changes owners, keeping counts in step.
func (m *SlotMap) put(s uint16, o SlotOwner) {
	if m.owners[s].Node != o.Node {
		m.byOwner = nil
	}
	if m.owners[s] != o {
		m.gen = slotMapGen.Add(1)
	}
	if m.counts == nil {
		m.counts = make(map[NodeID]int)
	}
	if prev := m.owners[s].Node; prev != "" {
		if m.counts[prev]--; m.counts[prev] == 0 {
			delete(m.counts, prev)
		}
		m.assigned--
	}
	if o.Node != "" {
		m.counts[o.Node]++
		m.assigned++
	}
	m.owners[s] = o
}

// CountOf returns how many slots node owns.
func (m *SlotMap) CountOf(node NodeID) int { return m.counts[node] }

// Primaries returns the number of distinct slot owners.
func (m *SlotMap) Primaries() int { return len(m.counts) }

// clone returns a deep copy.
func (m *SlotMap) clone() *SlotMap {
	c := &SlotMap{owners: m.owners, counts: make(map[NodeID]int, len(m.counts)), assigned: m.assigned}
	for k, v := range m.counts {
		c.counts[k] = v
	}
	return c
}

// Owner returns the owner of slot s ("" when unassigned).
func (m *SlotMap) Owner(s uint16) SlotOwner { return m.owners[s] }

// Claim applies a claim of slot s by node at epoch and reports whether it
// changed the map. A claim never loses to an older one, so applying the
// same set of claims in any order gives the same map.
func (m *SlotMap) Claim(s uint16, node NodeID, epoch uint64) bool {
	c := SlotOwner{Node: node, Epoch: epoch}
	cur := m.owners[s]
	if cur == c || !c.beats(cur) {
		return false
	}
	m.put(s, c)
	return true
}

// Set assigns slot s unconditionally (operator commands: ADDSLOTS, SETSLOT
// NODE); node "" unassigns it.
func (m *SlotMap) Set(s uint16, node NodeID, epoch uint64) {
	if node == "" {
		m.put(s, SlotOwner{})
		return
	}
	m.put(s, SlotOwner{Node: node, Epoch: epoch})
}

// setRange assigns every slot of r to node at epoch (node "" unassigns
// them); the new owner's count changes once per range, not per slot.
func (m *SlotMap) setRange(r SlotRange, node NodeID, epoch uint64) {
	m.byOwner = nil
	m.gen = slotMapGen.Add(1)
	if m.counts == nil {
		m.counts = make(map[NodeID]int)
	}
	o := SlotOwner{}
	if node != "" {
		o = SlotOwner{Node: node, Epoch: epoch}
	}
	for s := int(r.Start); s <= int(r.End); s++ {
		if prev := m.owners[s].Node; prev != "" {
			if m.counts[prev]--; m.counts[prev] == 0 {
				delete(m.counts, prev)
			}
			m.assigned--
		}
		m.owners[s] = o
	}
	if node != "" {
		m.counts[node] += r.Len()
		m.assigned += r.Len()
	}
}

// SlotsOf returns the slots node owns, as sorted ranges (a copy).
func (m *SlotMap) SlotsOf(node NodeID) []SlotRange {
	if node != "" {
		return slices.Clone(m.cachedRanges()[node])
	}
	var out []SlotRange // the unassigned slots
	for s := 0; s < NumSlots; s++ {
		if m.owners[s].Node != "" {
			continue
		}
		if n := len(out); n > 0 && int(out[n-1].End) == s-1 {
			out[n-1].End = uint16(s)
		} else {
			out = append(out, SlotRange{uint16(s), uint16(s)})
		}
	}
	return out
}

// ranges returns every owner's slots as sorted ranges (a copy).
func (m *SlotMap) ranges() map[NodeID][]SlotRange {
	c := m.cachedRanges()
	out := make(map[NodeID][]SlotRange, len(c))
	for o, rs := range c {
		out[o] = slices.Clone(rs)
	}
	return out
}

// cachedRanges returns byOwner, computing it in one pass when stale. A
// SlotMap is not safe for concurrent use (the Node's is its owner's;
// Slots gives each caller its own clone).
func (m *SlotMap) cachedRanges() map[NodeID][]SlotRange {
	if m.byOwner != nil {
		return m.byOwner
	}
	out := make(map[NodeID][]SlotRange, len(m.counts))
	for s := 0; s < NumSlots; {
		o := m.owners[s].Node
		e := s
		for e+1 < NumSlots && m.owners[e+1].Node == o {
			e++
		}
		if o != "" {
			out[o] = append(out[o], SlotRange{uint16(s), uint16(e)})
		}
		s = e + 1
	}
	m.byOwner = out
	return out
}

// Covered reports whether every slot has an owner.
func (m *SlotMap) Covered() bool { return m.Count() == NumSlots }

// Count returns how many slots are assigned.
func (m *SlotMap) Count() int { return m.assigned }

// SlotRange is an inclusive range of slots.
type SlotRange struct{ Start, End uint16 }

func (r SlotRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(int(r.Start))
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

// Len returns the number of slots in r.
func (r SlotRange) Len() int { return int(r.End) - int(r.Start) + 1 }

// ErrBadSlot is returned for a slot number outside 0..16383 or a malformed
// range.
var ErrBadSlot = errors.New("invalid or out of range slot")

// ParseSlot parses one slot number.
func ParseSlot(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= NumSlots {
		return 0, fmt.Errorf("slot %q: %w", s, ErrBadSlot)
	}
	return uint16(n), nil
}

// ParseSlotRange parses "N" or "A-B" (A <= B).
func ParseSlotRange(s string) (SlotRange, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		n, err := ParseSlot(s)
		return SlotRange{n, n}, err
	}
	lo, err := ParseSlot(a)
	if err != nil {
		return SlotRange{}, err
	}
	hi, err := ParseSlot(b)
	if err != nil {
		return SlotRange{}, err
	}
	if lo > hi {
		return SlotRange{}, fmt.Errorf("range %q: start after end: %w", s, ErrBadSlot)
	}
	return SlotRange{lo, hi}, nil
}

// SplitEven divides all slots into n contiguous ranges of nearly equal size,
// as redis-cli --cluster create does.
func SplitEven(n int) []SlotRange {
	if n <= 0 {
		return nil
	}
	out := make([]SlotRange, n)
	per := float64(NumSlots) / float64(n)
	start := 0
	for i := 0; i < n; i++ {
		end := int(float64(i+1)*per+0.5) - 1
		if i == n-1 || end >= NumSlots {
			end = NumSlots - 1
		}
		out[i] = SlotRange{uint16(start), uint16(end)}
		start = end + 1
	}
	return out
}
