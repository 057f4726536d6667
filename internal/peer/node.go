package peer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Role is a peer's role in its shard.
type Role uint8

const (
	RolePrimary Role = iota + 1
	RoleReplica
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "master"
	case RoleReplica:
		return "slave"
	}
	return "unknown"
}

// MsgType is the kind of a Message.
type MsgType uint8

const (
	// MsgHeartbeat carries the sender's header: epochs, role, slots,
	// replication offset and the peers it suspects (its failure reports).
	MsgHeartbeat MsgType = iota + 1
	// MsgFail announces that Subject is failed by a majority of primaries.
	MsgFail
	// MsgVoteRequest is a replica asking the primaries to let it take over
	// the slots of its failed primary (Subject) in epoch CurrentEpoch.
	MsgVoteRequest
	// MsgVote grants a MsgVoteRequest of epoch CurrentEpoch.
	MsgVote
)

func (t MsgType) String() string {
	switch t {
	case MsgHeartbeat:
		return "heartbeat"
	case MsgFail:
		return "fail"
	case MsgVoteRequest:
		return "vote-request"
	case MsgVote:
		return "vote"
	}
	return fmt.Sprintf("msgtype(%d)", uint8(t))
}

// Message is what peers exchange. Every message carries the sender's
// header so any message refreshes the receiver's view of the sender.
type Message struct {
	Type MsgType
	From NodeID
	// To is the destination; "" sends to every known peer.
	To NodeID

	CurrentEpoch uint64
	ConfigEpoch  uint64
	Addr         string
	BusPort      int
	Role         Role
	Primary      NodeID // the sender's primary when it is a replica
	Offset       uint64 // the sender's replication offset
	Slots        []SlotRange
	Suspects     []NodeID // peers the sender considers PFAIL or FAIL
	// Subject is the failed node of MsgFail and of MsgVoteRequest.
	Subject NodeID
	// Forced marks a vote request of a manual CLUSTER FAILOVER FORCE: the
	// voters do not require the primary to be failed.
	Forced bool
	// Wire is set by the transport in JSON messages: the newest binary
	// encoding the sender reads (wire.go; 0: JSON only).
	Wire uint8 `json:",omitempty"`
}

// PeerInfo is this node's view of one peer.
type PeerInfo struct {
	ID          NodeID
	Addr        string
	BusPort     int
	Role        Role
	Primary     NodeID
	ConfigEpoch uint64
	Offset      uint64
	LastSeen    time.Time
	PFail       bool // this node has not heard from it for NodeTimeout
	Fail        bool // a majority of primaries agreed it failed
	FailTime    time.Time

	// reports maps a reporting primary to when it last reported this peer
	reports map[NodeID]time.Time
	// votedAt is when this node last voted for a replica of this primary
	votedAt time.Time
}

// Node is one peer's cluster state machine, in the style of etcd-io/raft's
// RawNode: no goroutines, no clock, no I/O. Time enters as the now of Tick,
// Step and Apply; the output (messages, state to persist, dirty slots)
// waits in Ready until Advance acknowledges it.
//
// A Node is not safe for concurrent use. It has one owner (Cluster's owner
// goroutine, or a test's simulated network) that is the only caller of
// every method, and that handles each Ready in the order persist, send,
// Advance (see Ready). Nobody else reads its fields: the owner publishes
// what others need (the routing snapshot, Status).
type Node struct {
	cfg          NodeConfig
	rng          *rand.Rand
	id           NodeID
	currentEpoch uint64
	// lastVoteEpoch is the epoch this node last voted in; the vote leaves
	// only in a Ready whose State carries it, which the owner persists
	// before sending, so a restart cannot vote twice in one epoch.
	lastVoteEpoch uint64
	peers         map[NodeID]*PeerInfo // includes this node
	ids           []NodeID             // sortedPeerIDs' last answer
	slots         SlotMap

	lastHeartbeat time.Time
	// sent is the header of the last heartbeat to every peer (heartbeat):
	// a header that differs from it goes out before HeartbeatInterval
	sent Message
	// sentPeers is how many peers this node knew at that heartbeat: a
	// peer newly known is told this node's header at once
	sentPeers int
	el        election
	mig       migration // SETSLOT state and FORGET's blacklist (migration.go)

	// the pending output (Ready) until Advance
	msgs     []Message
	mustSave bool
	// dirty are slots this primary lost to a newer claim while staying a
	// primary (Ready.DirtySlots)
	dirty []uint16
	// claims are the last slot claims applied from each primary
	claims map[NodeID]appliedClaim
}

// appliedClaim is a claim of slots as applyClaims last applied it, and
// the slot map's generation after it.
type appliedClaim struct {
	epoch  uint64
	ranges []SlotRange
	gen    uint64
}

// election is a replica's failover attempt.
type election struct {
	startAt  time.Time // when to ask for votes; zero when none is scheduled
	rank     int
	asking   bool
	epoch    uint64
	deadline time.Time
	votes    map[NodeID]bool
	retryAt  time.Time // no new attempt before this
	forced   bool
	until    time.Time // a forced election's end (Op.Until); zero: none
}

// isZero reports whether no election is scheduled, running or held off.
func (e *election) isZero() bool {
	return e.startAt.IsZero() && e.rank == 0 && !e.asking && e.epoch == 0 && e.deadline.IsZero() &&
		e.votes == nil && e.retryAt.IsZero() && !e.forced && e.until.IsZero()
}

// expired reports whether a manual failover's election is past its end:
// its votes must promote nothing.
func (e *election) expired(now time.Time) bool {
	return e.forced && !e.until.IsZero() && now.After(e.until)
}

// NewNode returns a node that knows only itself: a primary without slots
// at epoch 0.
func NewNode(cfg NodeConfig) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := cfg.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	n := &Node{cfg: cfg, rng: rng, id: cfg.ID, peers: make(map[NodeID]*PeerInfo)}
	n.peers[n.id] = &PeerInfo{ID: n.id, Addr: cfg.Addr, BusPort: cfg.BusPort, Role: RolePrimary}
	return n, nil
}

// Ready is the output of the steps since the last Advance. Its owner
// handles it in this order, and only this order:
//
//  1. when MustSave, persist State and wait until it is durable;
//  2. send Messages;
//  3. call Advance(rd).
//
// State and Messages are taken at the same moment, so the state that
// makes a message safe to send (the epoch a vote was cast in, the claim a
// heartbeat announces) is in the State persisted before it. A State that
// could not be persisted must not be followed by its Messages: the owner
// then drops them and acknowledges only them (Advance with MustSave
// false), and the next Ready asks to persist again.
type Ready struct {
	Messages []Message
	MustSave bool
	// State is the state to persist when MustSave (nil otherwise).
	State *State
	// DirtySlots are slots this node owned as a primary and another
	// primary took over by a claim with a newer config epoch, while this
	// node stays a primary: any key of them still held here must be
	// deleted (Redis's "dirty slots" in clusterUpdateSlotsConfigWith). A
	// node that lost its last slot becomes a replica of the new owner
	// instead and full-syncs, so it reports none. Slots given away with
	// SETSLOT NODE (after their keys were migrated) are not reported.
	DirtySlots []uint16
}

// HasReady reports whether Ready has anything to do.
func (n *Node) HasReady() bool { return len(n.msgs) > 0 || n.mustSave || len(n.dirty) > 0 }

// Ready returns the pending output; it stays pending until Advance.
func (n *Node) Ready() Ready {
	rd := Ready{Messages: n.msgs, MustSave: n.mustSave, DirtySlots: n.dirty}
	if n.mustSave {
		st := n.State()
		rd.State = &st
	}
	return rd
}

// Advance acknowledges rd, the last Ready: its State is durable (if
// rd.MustSave), its Messages were sent (or dropped) and its DirtySlots
// handled. No Tick, Step or Apply may run between Ready and Advance.
func (n *Node) Advance(rd Ready) {
	n.msgs = trimFront(n.msgs, len(rd.Messages))
	n.dirty = trimFront(n.dirty, len(rd.DirtySlots))
	if rd.MustSave {
		n.mustSave = false
	}
}

// trimFront drops the first k elements; an emptied slice is released
// (the caller may still hold the old one).
func trimFront[T any](s []T, k int) []T {
	if k >= len(s) {
		return nil
	}
	return s[k:]
}

// ID returns this node's ID.
func (n *Node) ID() NodeID { return n.id }

// CurrentEpoch returns the highest epoch this node has seen.
func (n *Node) CurrentEpoch() uint64 { return n.currentEpoch }

// Self returns a copy of this node's own entry.
func (n *Node) Self() PeerInfo { return n.copyOf(n.peers[n.id]) }

// Slots returns a copy of the slot map.
func (n *Node) Slots() *SlotMap { return n.slots.clone() }

// SlotOwner returns the owner of slot s ("" when unassigned).
func (n *Node) SlotOwner(s uint16) NodeID { return n.slots.owners[s].Node }

// Peer returns a copy of the entry of id.
func (n *Node) Peer(id NodeID) (PeerInfo, bool) {
	p, ok := n.peers[id]
	if !ok {
		return PeerInfo{}, false
	}
	return n.copyOf(p), true
}

// Peers returns copies of every entry, this node included, sorted by ID.
func (n *Node) Peers() []PeerInfo {
	out := make([]PeerInfo, 0, len(n.peers))
	for _, id := range n.sortedPeerIDs() {
		out = append(out, n.copyOf(n.peers[id]))
	}
	return out
}

func (n *Node) copyOf(p *PeerInfo) PeerInfo {
	c := *p
	c.reports = nil
	return c
}

// FailureReports returns how many failure reports about id this node
// holds that are still valid at now (CLUSTER COUNT-FAILURE-REPORTS). It
// changes nothing: expired reports are dropped by Tick.
func (n *Node) FailureReports(id NodeID, now time.Time) int {
	p, ok := n.peers[id]
	if !ok {
		return 0
	}
	c := 0
	for _, at := range p.reports {
		if now.Sub(at) <= n.cfg.FailReportValidity {
			c++
		}
	}
	return c
}

// setOffset records this node's replication offset (its owner copies the
// store's before every Tick); it travels in heartbeats and ranks replicas.
func (n *Node) setOffset(off uint64) { n.peers[n.id].Offset = off }

// addPeer makes a peer known (CLUSTER MEET, or membership reported it);
// its details arrive with its first heartbeat.
func (n *Node) addPeer(id NodeID, addr string, now time.Time) {
	if id == n.id || n.isForgotten(id, now) {
		return
	}
	p, ok := n.peers[id]
	if !ok {
		p = &PeerInfo{ID: id, Role: RolePrimary, LastSeen: now}
		n.peers[id] = p
		n.mustSave = true
	}
	if addr != "" && p.Addr != addr {
		p.Addr = addr
		n.mustSave = true
	}
}

// ErrUnknownNode is returned for operations naming a node this node does
// not know; its text is Redis's reply ("Unknown node <id>").
var ErrUnknownNode = errors.New("unknown node")

// unknownNode is ErrUnknownNode with Redis's wording.
func unknownNode(id NodeID) error { return &unknownNodeError{id} }

type unknownNodeError struct{ id NodeID }

func (e *unknownNodeError) Error() string        { return "Unknown node " + string(e.id) }
func (e *unknownNodeError) Is(target error) bool { return target == ErrUnknownNode }

// forget removes a peer and its slots from this node's view (CLUSTER
// FORGET); it comes back if it keeps talking.
func (n *Node) forget(id NodeID) error {
	if id == n.id {
		return errors.New("I tried hard but I can't forget myself")
	}
	if _, ok := n.peers[id]; !ok {
		return unknownNode(id)
	}
	if n.self().Primary == id {
		return errors.New("Can't forget my master")
	}
	delete(n.peers, id)
	delete(n.claims, id)
	for s := 0; s < NumSlots; s++ {
		if n.slots.owners[s].Node == id {
			n.slots.put(uint16(s), SlotOwner{})
		}
	}
	n.mustSave = true
	return nil
}

func (n *Node) self() *PeerInfo { return n.peers[n.id] }

// primaryCount returns the number of primaries serving at least one slot:
// the electorate of failure agreement and failover votes.
func (n *Node) primaryCount() int { return n.slots.Primaries() }

func (n *Node) quorum() int { return n.primaryCount()/2 + 1 }

// ownsSlots reports whether id owns at least one slot in this node's map.
func (n *Node) ownsSlots(id NodeID) bool { return n.slots.CountOf(id) > 0 }

func (n *Node) observeEpoch(e uint64) {
	if e > n.currentEpoch {
		n.currentEpoch = e
		n.mustSave = true
	}
}

// header fills m with this node's header.
func (n *Node) header(m Message) Message {
	s := n.self()
	m.From = n.id
	m.CurrentEpoch = max(m.CurrentEpoch, n.currentEpoch)
	m.ConfigEpoch = s.ConfigEpoch
	m.Addr = s.Addr
	m.BusPort = s.BusPort
	m.Role = s.Role
	m.Primary = s.Primary
	m.Offset = s.Offset
	if s.Role == RolePrimary {
		m.Slots = n.slots.SlotsOf(n.id)
	}
	for _, id := range n.sortedPeerIDs() {
		if p := n.peers[id]; id != n.id && (p.PFail || p.Fail) {
			m.Suspects = append(m.Suspects, id)
		}
	}
	return m
}

func (n *Node) send(m Message) { n.msgs = append(n.msgs, n.header(m)) }

// sortedPeerIDs returns the IDs of n.peers in order. Tick (every 10 ms)
// and every heartbeat walk them: the list is kept while it still names
// exactly the peers (same length, every ID present), so an unchanged
// view costs lookups, not a sort and an allocation. Callers only read
// it; a changed view gets a new slice (a loop over the old one is safe).
func (n *Node) sortedPeerIDs() []NodeID {
	if len(n.ids) == len(n.peers) {
		same := true
		for _, id := range n.ids {
			if _, ok := n.peers[id]; !ok {
				same = false
				break
			}
		}
		if same {
			return n.ids
		}
	}
	ids := make([]NodeID, 0, len(n.peers))
	for id := range n.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	n.ids = ids
	return ids
}

// Tick advances time: suspicion of silent peers, failure agreement, the
// replica's election, and heartbeats. Nothing happens before NextDeadline:
// a Tick earlier than it changes nothing, so the owner sleeps until then.
func (n *Node) Tick(now time.Time) {
	for _, id := range n.sortedPeerIDs() {
		p := n.peers[id]
		if id == n.id {
			continue
		}
		if !p.PFail && now.Sub(p.LastSeen) > n.cfg.NodeTimeout {
			p.PFail = true
		}
		n.expireReports(p, now)
		n.checkFailing(p, now)
	}
	n.tickElection(now)
	n.heartbeat(now)
}

// heartbeat sends this node's header to every peer when it changed (a
// new suspect, a slot claim, a role, a new peer known), at most every
// MinHeartbeatInterval, and otherwise every HeartbeatInterval
// (periodicDue). It is the schedule of Redis's clusterCron in spirit (a
// node is pinged when its pong is older than half the node timeout, and
// news spreads at once) with one-way messages: each peer gets a few
// heartbeats per node timeout, not one per tick.
func (n *Node) heartbeat(now time.Time) {
	if !n.lastHeartbeat.IsZero() {
		if now.Sub(n.lastHeartbeat) < n.cfg.MinHeartbeatInterval || now.Before(n.periodicDue()) && !n.headerChanged() {
			return
		}
	}
	n.sendHeartbeat(now)
}

// periodicDue is when the next heartbeat is due while the header does
// not change: at the next multiple of HeartbeatInterval of the wall
// clock (the same instants on every peer whose clock is in time), but
// not within MinHeartbeatInterval of the last heartbeat, so at most
// HeartbeatInterval after it. On a common grid a peer receives its
// peers' heartbeats together and wakes once for all of them, instead of
// once per peer at random phases; and a silent peer is suspected by
// everyone at about the same moment. The wait is computed from the wall
// clock's phase but added to the last heartbeat's time, so a wall clock
// that jumps changes one interval, not the schedule.
func (n *Node) periodicDue() time.Time {
	h, last := n.cfg.HeartbeatInterval, n.lastHeartbeat
	wait := h - last.Sub(last.Truncate(h))
	return last.Add(max(wait, n.cfg.MinHeartbeatInterval))
}

// sendHeartbeat sends this node's header to every peer now.
func (n *Node) sendHeartbeat(now time.Time) {
	hb := n.header(Message{Type: MsgHeartbeat})
	n.lastHeartbeat, n.sent, n.sentPeers = now, hb, len(n.peers)
	n.msgs = append(n.msgs, hb)
}

// headerChanged reports whether this node's header says something the
// last heartbeat did not, or a peer became known since: everything but
// the replication offset (it changes with every write and waits for the
// next periodic heartbeat, as in Redis) and the current epoch (every
// message carries it; the changes that matter, a new config epoch or an
// election's vote request, are sent by themselves). It reads what header
// would write, without building it.
func (n *Node) headerChanged() bool {
	s, me := &n.sent, n.self()
	if me.ConfigEpoch != s.ConfigEpoch || me.Addr != s.Addr || me.BusPort != s.BusPort ||
		me.Role != s.Role || me.Primary != s.Primary || len(n.peers) != n.sentPeers {
		return true
	}
	var slots []SlotRange
	if me.Role == RolePrimary {
		slots = n.slots.cachedRanges()[n.id]
	}
	if !slices.Equal(slots, s.Slots) {
		return true
	}
	i := 0
	for _, id := range n.sortedPeerIDs() {
		if p := n.peers[id]; id != n.id && (p.PFail || p.Fail) {
			if i >= len(s.Suspects) || s.Suspects[i] != id {
				return true
			}
			i++
		}
	}
	return i != len(s.Suspects)
}

// NextDeadline returns the earliest time at which Tick has something to
// do (send a heartbeat, suspect a silent peer, drop an expired failure
// report, mark a peer FAIL, move the election on); now when that is due
// already. A Tick before it changes nothing (every simulation checks
// this at each of its steps: simNet.tick), so the owner does not tick
// more often than needed: on an idle cluster, at its heartbeats instead
// of every TickInterval.
func (n *Node) NextDeadline(now time.Time) time.Time {
	if n.lastHeartbeat.IsZero() {
		return now
	}
	next := n.periodicDue()
	at := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if n.headerChanged() {
		at(n.lastHeartbeat.Add(n.cfg.MinHeartbeatInterval))
	}
	quorum, selfVote := n.quorum(), 0
	if n.self().Role == RolePrimary && n.ownsSlots(n.id) {
		selfVote = 1
	}
	for id, p := range n.peers {
		if id == n.id {
			continue
		}
		if !p.PFail {
			// Tick suspects it once now - LastSeen > NodeTimeout
			at(p.LastSeen.Add(n.cfg.NodeTimeout + 1))
		}
		valid := 0
		for _, t := range p.reports {
			// Tick drops a report once now - t > FailReportValidity
			at(t.Add(n.cfg.FailReportValidity + 1))
			if now.Sub(t) <= n.cfg.FailReportValidity {
				valid++
			}
		}
		if p.PFail && !p.Fail && valid+selfVote >= quorum {
			at(now) // reports arrived since the last Tick: FAIL now
		}
	}
	if t, ok := n.electionDeadline(now); ok {
		at(t)
	}
	if next.Before(now) {
		return now
	}
	return next
}

// electionDeadline is when tickElection next changes something; false:
// not before an input changes the node.
func (n *Node) electionDeadline(now time.Time) (time.Time, bool) {
	if n.self().Role != RoleReplica {
		return now, !n.el.isZero()
	}
	if n.el.expired(now) {
		return now, true
	}
	var t time.Time
	has := false
	earliest := func(x time.Time) {
		if !has || x.Before(t) {
			t, has = x, true
		}
	}
	if n.el.forced && !n.el.until.IsZero() {
		earliest(n.el.until.Add(1)) // expired once now is after until
	}
	if n.el.asking {
		earliest(n.el.deadline.Add(1)) // given up once now is after the deadline
		return t, has
	}
	me := n.self()
	prim, ok := n.peers[me.Primary]
	failed := ok && prim.Fail && n.ownsSlots(prim.ID)
	if !failed && !n.el.forced {
		if !n.el.startAt.IsZero() {
			return now, true // the schedule is dropped
		}
		return t, has
	}
	if now.Before(n.el.retryAt) {
		earliest(n.el.retryAt)
		return t, has
	}
	if n.el.startAt.IsZero() || !n.el.forced && n.rank() > n.el.rank {
		return now, true // scheduled, or put off for a better sibling
	}
	earliest(n.el.startAt)
	return t, has
}

// Step applies one message received at now.
func (n *Node) Step(m Message, now time.Time) error {
	if m.From == n.id || n.isForgotten(m.From, now) {
		return nil
	}
	if !ValidNodeID(string(m.From)) {
		return fmt.Errorf("message from %q: bad node id", m.From)
	}
	if m.To != "" && m.To != n.id {
		return fmt.Errorf("message for %s delivered to %s", m.To, n.id)
	}
	if m.Role != RolePrimary && m.Role != RoleReplica {
		return fmt.Errorf("message from %s: unknown role %d", m.From, m.Role)
	}
	if m.Role == RoleReplica && !ValidNodeID(string(m.Primary)) {
		return fmt.Errorf("message from %s: replica of bad node id %q", m.From, m.Primary)
	}
	for _, r := range m.Slots {
		if r.Start > r.End || int(r.End) >= NumSlots {
			return fmt.Errorf("message from %s: slot range %d-%d: %w", m.From, r.Start, r.End, ErrBadSlot)
		}
	}
	n.observeEpoch(m.CurrentEpoch)
	n.updateSender(m, now)
	switch m.Type {
	case MsgHeartbeat:
	case MsgFail:
		if p, ok := n.peers[m.Subject]; ok && m.Subject != n.id && !p.Fail {
			p.Fail, p.FailTime = true, now
		}
	case MsgVoteRequest:
		n.handleVoteRequest(m, now)
	case MsgVote:
		n.handleVote(m, now)
	default:
		return fmt.Errorf("message from %s: unknown type %d", m.From, m.Type)
	}
	return nil
}

// updateSender refreshes the sender's entry from the header of m, applies
// its slot claims and failure reports.
func (n *Node) updateSender(m Message, now time.Time) {
	p, ok := n.peers[m.From]
	if !ok {
		p = &PeerInfo{ID: m.From}
		n.peers[m.From] = p
		n.mustSave = true
	}
	if p.Addr != m.Addr || p.Role != m.Role || p.Primary != m.Primary || p.ConfigEpoch != m.ConfigEpoch {
		n.mustSave = true
	}
	if p.BusPort != m.BusPort {
		n.mustSave = true
	}
	p.Addr, p.BusPort, p.Role, p.Primary, p.ConfigEpoch, p.Offset = m.Addr, m.BusPort, m.Role, m.Primary, m.ConfigEpoch, m.Offset
	p.LastSeen = now
	p.PFail = false
	if p.Fail && n.mayClearFail(p, now) {
		p.Fail = false
	}
	if m.Role == RolePrimary {
		n.applyClaims(m.From, m.ConfigEpoch, m.Slots)
		n.resolveCollision(p)
	}
	// failure reports count only from primaries that serve slots
	if m.Role == RolePrimary && n.ownsSlots(m.From) {
		suspects := make(map[NodeID]bool, len(m.Suspects))
		for _, id := range m.Suspects {
			suspects[id] = true
		}
		for id, q := range n.peers {
			if id == m.From {
				continue
			}
			if suspects[id] {
				if q.reports == nil {
					q.reports = make(map[NodeID]time.Time)
				}
				q.reports[m.From] = now
			} else {
				delete(q.reports, m.From)
			}
		}
	}
}

// mayClearFail: a returning replica or slot-less primary is back at once;
// a primary with slots only after FailReportValidity, giving its replicas
// the time to take the slots over (Redis's FAIL_UNDO_TIME).
func (n *Node) mayClearFail(p *PeerInfo, now time.Time) bool {
	if p.Role == RoleReplica || !n.ownsSlots(p.ID) {
		return true
	}
	return now.Sub(p.FailTime) > n.cfg.FailReportValidity
}

// applyClaims applies from's claims of slots at epoch and reacts when this
// node, or its primary, lost all of its slots to a newer claim: it then
// follows the new owner (the old primary comes back as a replica).
func (n *Node) applyClaims(from NodeID, epoch uint64, ranges []SlotRange) {
	// every heartbeat repeats its sender's claims: the same claim on an
	// unchanged map changes nothing again, so skip the per-slot scan
	if c, ok := n.claims[from]; ok && c.gen == n.slots.gen && c.epoch == epoch && slices.Equal(c.ranges, ranges) {
		return
	}
	defer func() {
		if n.claims == nil {
			n.claims = map[NodeID]appliedClaim{}
		}
		n.claims[from] = appliedClaim{epoch: epoch, ranges: slices.Clone(ranges), gen: n.slots.gen}
	}()
	me := n.self()
	watched := n.id
	if me.Role == RoleReplica {
		watched = me.Primary
	}
	hadSlots := watched != "" && n.ownsSlots(watched)
	changed := false
	lostTo := NodeID("")
	var lost []uint16 // slots this primary lost
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			prev := n.slots.owners[s].Node
			if n.slots.Claim(uint16(s), from, epoch) {
				changed = true
				if prev == watched && prev != "" {
					lostTo = from
				}
				if prev == n.id && from != n.id && me.Role == RolePrimary {
					lost = append(lost, uint16(s))
				}
			}
		}
	}
	if changed {
		n.mustSave = true
	}
	if hadSlots && lostTo != "" && !n.ownsSlots(watched) && lostTo != n.id {
		me.Role, me.Primary = RoleReplica, lostTo
		n.el = election{retryAt: n.el.retryAt}
		return // a replica now: it full-syncs from the new owner
	}
	n.dirty = append(n.dirty, lost...)
}

// resolveCollision: two primaries with the same config epoch could claim
// the same slots forever; as in Redis the one with the smaller ID takes a
// new, unique epoch (and the slot tie rule also favours the smaller ID).
func (n *Node) resolveCollision(p *PeerInfo) {
	me := n.self()
	if me.Role != RolePrimary || p.ConfigEpoch != me.ConfigEpoch || me.ConfigEpoch == 0 && !n.ownsSlots(n.id) {
		return
	}
	if n.id > p.ID {
		return
	}
	n.currentEpoch++
	n.setConfigEpoch(n.currentEpoch)
}

// setConfigEpoch gives this node a new config epoch and re-claims its
// slots with it.
func (n *Node) setConfigEpoch(e uint64) {
	me := n.self()
	me.ConfigEpoch = e
	for s := range n.slots.owners {
		if n.slots.owners[s].Node == n.id {
			n.slots.owners[s].Epoch = e
		}
	}
	n.mustSave = true
}

func (n *Node) expireReports(p *PeerInfo, now time.Time) {
	for r, at := range p.reports {
		if now.Sub(at) > n.cfg.FailReportValidity {
			delete(p.reports, r)
		}
	}
}

// checkFailing marks p FAIL when this node suspects it and, counting
// itself if it is a primary with slots, a majority of primaries reported
// it within the validity window; it then tells everyone.
func (n *Node) checkFailing(p *PeerInfo, now time.Time) {
	if !p.PFail || p.Fail {
		return
	}
	votes := len(p.reports)
	if n.self().Role == RolePrimary && n.ownsSlots(n.id) {
		votes++
	}
	if votes < n.quorum() {
		return
	}
	p.Fail, p.FailTime = true, now
	n.send(Message{Type: MsgFail, Subject: p.ID})
}

// ClusterOK reports whether this node should serve clients: it reaches a
// majority of the primaries (a primary cut off in a minority stops
// accepting writes after the node timeout, as in Redis), and, when
// requireFull, every slot has an owner that is not FAIL.
func (n *Node) ClusterOK(requireFull bool) bool {
	if requireFull && !n.slots.Covered() || n.slots.Primaries() == 0 {
		return false
	}
	reach := 0
	for id := range n.slots.counts {
		p := n.peers[id]
		if id == n.id || p != nil && !p.PFail && !p.Fail {
			reach++
		} else if requireFull && p != nil && p.Fail {
			return false
		}
	}
	return reach >= n.slots.Primaries()/2+1
}
