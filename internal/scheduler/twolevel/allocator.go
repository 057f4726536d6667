package twolevel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/gantry-project/gantry/internal/structs"
)

// The allocator is the two-level architecture's first level, the Mesos
// master's allocator: it divides the cluster's free resources among
// frameworks by weighted Dominant Resource Fairness and hands them out as
// offers, one node's free resources per offer.
//
// It is a pure state machine in the manner of etcd-io/raft: no goroutines,
// no clock, no I/O. Time is an argument of the calls that need it,
// randomness comes from the *rand.Rand it is built with, and what it
// decides comes out as Outputs (offers made, offers rescinded) that the
// caller delivers. The same inputs in the same order give the same
// outputs, so tests script it and replay failures from a seed. It is not
// safe for concurrent use: the architecture (Scheduler) owns it under a
// lock.
//
// Invariants (checkInvariants, tested under random workloads):
//   - a node has at most one outstanding offer, and an offer belongs to one
//     framework: a resource is never offered twice at once;
//   - a node's used + being launched + offered never exceeds its capacity
//     (an offer that stops fitting, because usage grew, is rescinded);
//   - only outstanding offers can be used or declined: a rescinded, expired,
//     used or unknown offer is refused with ErrOfferNotOutstanding.

// Errors the allocator returns; callers branch on them.
var (
	// ErrOfferNotOutstanding: the offer was rescinded, expired, already
	// used or declined, never existed, or is another framework's.
	ErrOfferNotOutstanding = errors.New("offer is not outstanding")
	// ErrOfferExceeded: more resources used than the offer holds.
	ErrOfferExceeded = errors.New("resources exceed the offer")
	// ErrUnknownFramework: no such framework is registered.
	ErrUnknownFramework = errors.New("unknown framework")
)

// Config tunes the allocator. Start from DefaultAllocatorConfig.
type AllocatorConfig struct {
	// OfferTimeout rescinds an offer unused for this long (0 = never).
	OfferTimeout time.Duration
	// MinOffer is the least free room worth offering (both dimensions).
	MinOffer structs.Resources
	// Roles gives roles a weight (default 1) and a quota (guaranteed
	// resources, default none).
	Roles map[string]RoleConfig
	// ReservationLabel names the node label that reserves a node for a
	// role: its resources are offered only to that role's frameworks.
	// "" = no reservations.
	ReservationLabel string
}

// RoleConfig is one role's weight and quota.
type RoleConfig struct {
	// Weight scales the role's fair share: a role of weight 2 is entitled
	// to twice the dominant share of a role of weight 1 (> 0; 0 = 1).
	Weight float64
	// Quota is guaranteed to the role: until its frameworks hold that
	// much, the role is offered resources first, and other roles are not
	// offered the unreserved room it still needs (Mesos's quota headroom).
	Quota structs.Resources
}

// DefaultAllocatorConfig returns the allocator's standard settings.
func DefaultAllocatorConfig() AllocatorConfig {
	return AllocatorConfig{
		OfferTimeout: 30 * time.Second,
		MinOffer:     structs.Resources{CPU: 10, MemoryMB: 16},
	}
}

// Validate reports every bad field.
func (c AllocatorConfig) Validate() error {
	var errs []error
	if c.OfferTimeout < 0 {
		errs = append(errs, fieldErrorf("offer_timeout", "must be >= 0 (got %s)", c.OfferTimeout))
	}
	if c.MinOffer.CPU < 0 || c.MinOffer.MemoryMB < 0 {
		errs = append(errs, fieldErrorf("min_offer", "must be >= 0 (got %s)", c.MinOffer))
	}
	for _, name := range slices.Sorted(mapKeys(c.Roles)) {
		r := c.Roles[name]
		if name == "" {
			errs = append(errs, fieldErrorf("roles", "a role needs a name"))
		}
		if r.Weight < 0 || r.Weight != r.Weight {
			errs = append(errs, fieldErrorf("roles."+name+".weight", "must be > 0 (got %g)", r.Weight))
		}
		if r.Quota.CPU < 0 || r.Quota.MemoryMB < 0 {
			errs = append(errs, fieldErrorf("roles."+name+".quota", "must be >= 0 (got %s)", r.Quota))
		}
	}
	return errors.Join(errs...)
}

// NodeInfo is what the allocator knows of a node.
type NodeInfo struct {
	ID, Name string
	Capacity structs.Resources
	Labels   map[string]string
	// Ready: may receive placements (status ready and not draining).
	Ready bool
}

// Use is one framework's live allocations on a node.
type Use struct {
	Framework string
	Role      string
	Resources structs.Resources
}

// OutputKind says what an Output asks the caller to deliver.
type OutputKind uint8

const (
	// OutputOffer: send Offer to its framework.
	OutputOffer OutputKind = iota + 1
	// OutputRescind: tell the framework that OfferID is withdrawn.
	OutputRescind
)

// Output is one decision of the allocator for the caller to deliver.
type Output struct {
	Kind      OutputKind
	Framework string
	OfferID   string
	// OutputOffer: the offered node and resources, and when the offer
	// expires (zero: never).
	NodeID    string
	Resources structs.Resources
	Expires   time.Time
	// OutputRescind: why, and whether the offer timed out.
	Reason  string
	Expired bool

	node *node
}

// Wire returns an OutputOffer as frameworks receive it.
func (o Output) Wire() structs.Offer {
	w := structs.Offer{ID: o.OfferID, FrameworkID: o.Framework, AgentID: o.NodeID, Resources: o.Resources}
	if o.node != nil {
		w.Hostname, w.Attributes, w.Role = o.node.name, o.node.labels, o.node.role
	}
	if !o.Expires.IsZero() {
		w.Expires = structs.Seconds(o.Expires)
	}
	return w
}

// Allocator is the DRF allocator; see the comment at the top of the file.
type Allocator struct {
	cfg   AllocatorConfig
	rng   *rand.Rand
	epoch string // offer ID prefix, random per allocator
	seq   uint64 // offer ID counter

	nodes    map[string]*node
	nodeList []*node // insertion order, for deterministic rounds
	visit    []*node // nodes to look at in the next round
	total    structs.Resources
	// freeUnreserved is the free, unoffered room of ready nodes reserved
	// for no role: what quota headroom is measured against.
	freeUnreserved structs.Resources

	frameworks map[string]*framework
	fwList     []*framework // sorted by ID
	roles      map[string]*role

	offers      map[string]*offer
	offerExpiry offerQueue
	filterHeap  timeHeap[*filter]

	out, spare []Output // outputs since TakeOutputs; the buffer given out before
	// lastNow is the latest time a call gave; rescinds caused by calls
	// without a time (a node lost) are stamped with it.
	lastNow time.Time
	stats   allocStats
}

type allocStats struct {
	offersSent, declined, accepted, rescinded, expired, rounds uint64
	holds                                                      schedstat.Window
	// holdLog are the hold times of offers closed since TakeHolds (for
	// a histogram), at most maxHoldLog.
	holdLog []time.Duration
}

const maxHoldLog = 4096

// TakeHolds returns how long each offer closed since the last call was
// held (at most the last maxHoldLog).
func (a *Allocator) TakeHolds() []time.Duration {
	h := a.stats.holdLog
	a.stats.holdLog = nil
	return h
}

// node is the allocator's state of one node.
type node struct {
	id, name string
	capacity structs.Resources
	labels   map[string]string
	role     string // reserved for this role ("" = none)
	ready    bool
	used     structs.Resources // live allocations (from state)
	usedBy   []Use
	pending  structs.Resources // being launched: taken from offers, not yet in used
	offer    *offer
	visiting bool // in Allocator.visit
	counted  structs.Resources
}

// framework is one framework as the allocator sees it. A framework with
// live allocations that is not registered (disconnected past a leader
// change, or torn down with tasks still stopping) is kept inactive so its
// usage still counts toward its role's share.
type framework struct {
	id, name, role string
	registered     bool
	active         bool // registered and connected: may receive offers
	suppressed     bool
	used           structs.Resources
	offered        structs.Resources
	pending        structs.Resources
	offers         int
	filters        map[*node]*filter
	stats          fwStats
}

type fwStats struct {
	offersSent, accepted, declined, rescinded, expired uint64
}

func (f *framework) allocated() structs.Resources {
	return f.used.Add(f.offered).Add(f.pending)
}

type role struct {
	name      string
	weight    float64
	quota     structs.Resources
	allocated structs.Resources
	members   int // frameworks counted in allocated
}

type offer struct {
	id      string
	fw      *framework
	node    *node
	res     structs.Resources
	created time.Time
	expires time.Time // zero = never
	closed  bool
	queued  bool // in Allocator.offerExpiry
}

// filter keeps a framework from being offered a node's resources again
// while they are no more than what it refused, until a time.
type filter struct {
	fw      *framework
	n       *node
	refused structs.Resources
	until   time.Time
	idx     int // in Allocator.filterHeap
}

// NewAllocator returns an allocator with no nodes and no frameworks.
func NewAllocator(cfg AllocatorConfig, rng *rand.Rand) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("allocator: a random source is required")
	}
	a := &Allocator{
		cfg: cfg, rng: rng,
		epoch:      fmt.Sprintf("%08x", rng.Uint32()),
		nodes:      map[string]*node{},
		frameworks: map[string]*framework{},
		roles:      map[string]*role{},
		offers:     map[string]*offer{},
	}
	return a, nil
}

// TakeOutputs returns the outputs since the last call, in order. The
// slice is valid until the next call (the two calls' buffers are reused,
// so a round of 10,000 offers does not allocate them again).
func (a *Allocator) TakeOutputs() []Output {
	out := a.out
	clear(a.spare)
	a.out, a.spare = a.spare[:0], out
	return out
}

// ---- nodes ----

// UpsertNode adds or updates a node. A node that stops being ready has its
// offer rescinded with reason.
func (a *Allocator) UpsertNode(info NodeInfo, reason string) {
	n := a.nodes[info.ID]
	if n == nil {
		n = &node{id: info.ID}
		a.nodes[info.ID] = n
		a.nodeList = append(a.nodeList, n)
	}
	a.uncount(n)
	if n.ready {
		a.total = a.total.Sub(n.capacity)
	}
	n.name, n.capacity, n.labels, n.ready = info.Name, info.Capacity, info.Labels, info.Ready
	n.role = ""
	if a.cfg.ReservationLabel != "" {
		n.role = info.Labels[a.cfg.ReservationLabel]
	}
	if n.ready {
		a.total = a.total.Add(n.capacity)
	}
	a.count(n)
	if n.offer != nil && (!n.ready || !a.offerFits(n) || !a.reservationAllows(n, n.offer.fw)) {
		if reason == "" {
			reason = "node changed"
		}
		a.rescind(n.offer, reason, false, a.lastNow)
	}
	a.wantVisit(n)
}

// RemoveNode forgets a node (its offer is rescinded with reason).
func (a *Allocator) RemoveNode(id, reason string) {
	n := a.nodes[id]
	if n == nil {
		return
	}
	if n.offer != nil {
		a.rescind(n.offer, reason, false, a.lastNow)
	}
	a.SetNodeUsage(id, structs.Resources{}, nil)
	a.uncount(n)
	if n.ready {
		a.total = a.total.Sub(n.capacity)
	}
	for _, f := range a.fwList {
		a.dropFilter(f, n)
	}
	delete(a.nodes, id)
	a.nodeList = slices.DeleteFunc(a.nodeList, func(x *node) bool { return x == n })
	a.visit = slices.DeleteFunc(a.visit, func(x *node) bool { return x == n })
}

// SetNodeUsage records what live allocations use on a node, per framework
// (from state). If the node's offer no longer fits beside it, the offer is
// rescinded; if room was freed, the node is offered again.
func (a *Allocator) SetNodeUsage(id string, used structs.Resources, by []Use) {
	n := a.nodes[id]
	if n == nil {
		return
	}
	a.uncount(n)
	for _, u := range n.usedBy {
		if f := a.frameworks[u.Framework]; f != nil {
			a.addAlloc(f, &f.used, u.Resources, -1)
		}
	}
	grew := used.CPU < n.used.CPU || used.MemoryMB < n.used.MemoryMB
	n.used = used
	n.usedBy = append(n.usedBy[:0], by...)
	for _, u := range n.usedBy {
		f := a.frameworks[u.Framework]
		if f == nil {
			f = a.addFramework(u.Framework, "", u.Role)
		}
		a.addAlloc(f, &f.used, u.Resources, +1)
	}
	a.forgetIdle()
	a.count(n)
	if n.offer != nil && !a.offerFits(n) {
		a.rescind(n.offer, "the offered resources were used", false, a.lastNow)
	}
	if grew || n.offer == nil {
		a.wantVisit(n)
	}
}

// AddUsage adds res to what framework fwID (of role) uses on a node: a
// launch the caller knows was placed, without reading the node again.
// A later SetNodeUsage replaces it with what state says.
func (a *Allocator) AddUsage(nodeID, fwID, roleName string, res structs.Resources) {
	n := a.nodes[nodeID]
	if n == nil || res.IsZero() {
		return
	}
	a.uncount(n)
	n.used = n.used.Add(res)
	i := slices.IndexFunc(n.usedBy, func(u Use) bool { return u.Framework == fwID })
	if i < 0 {
		n.usedBy = append(n.usedBy, Use{Framework: fwID, Role: roleName})
		i = len(n.usedBy) - 1
	}
	n.usedBy[i].Resources = n.usedBy[i].Resources.Add(res)
	f := a.frameworks[fwID]
	if f == nil {
		f = a.addFramework(fwID, "", roleName)
	}
	a.addAlloc(f, &f.used, res, +1)
	a.count(n)
	if n.offer != nil && !a.offerFits(n) {
		a.rescind(n.offer, "the offered resources were used", false, a.lastNow)
	}
}

// offerFits reports whether the node's offer still fits beside its usage.
func (a *Allocator) offerFits(n *node) bool {
	ok, _ := n.capacity.Fits(n.used.Add(n.pending).Add(n.offer.res))
	return ok
}

// free is the node's room neither used, being launched nor offered.
func (n *node) free() structs.Resources {
	f := n.capacity.Sub(n.used).Sub(n.pending)
	if n.offer != nil {
		f = f.Sub(n.offer.res)
	}
	return structs.Resources{CPU: max(f.CPU, 0), MemoryMB: max(f.MemoryMB, 0)}
}

// count adds the node's free room to freeUnreserved (uncount removes it):
// every change to a node is bracketed by the two, so the sum stays exact
// without a walk over the nodes.
func (a *Allocator) count(n *node) {
	n.counted = structs.Resources{}
	if n.ready && n.role == "" {
		n.counted = n.free()
	}
	a.freeUnreserved = a.freeUnreserved.Add(n.counted)
}

func (a *Allocator) uncount(n *node) {
	a.freeUnreserved = a.freeUnreserved.Sub(n.counted)
	n.counted = structs.Resources{}
}

// wantVisit queues the node for the next round.
func (a *Allocator) wantVisit(n *node) {
	if !n.visiting && n.ready {
		n.visiting = true
		a.visit = append(a.visit, n)
	}
}

// visitAll queues every ready node without an offer (a framework became
// eligible for resources it was not offered before).
func (a *Allocator) visitAll() {
	for _, n := range a.nodeList {
		if n.offer == nil {
			a.wantVisit(n)
		}
	}
}

// ---- frameworks ----

// AddFramework registers a framework and makes it active: it receives
// offers from the next round. A framework already known (inactive, or
// known from its tasks' usage) is reactivated, in role if role is set.
func (a *Allocator) AddFramework(id, name, roleName string) {
	if roleName == "" {
		roleName = structs.DefaultRole
	}
	f := a.frameworks[id]
	if f == nil {
		f = a.addFramework(id, name, roleName)
	} else if f.role != roleName {
		old := a.role(f.role)
		a.addRoleAlloc(old, f.allocated(), -1)
		old.members--
		f.role = roleName
		nr := a.role(roleName)
		nr.members++
		a.addRoleAlloc(nr, f.allocated(), +1)
		a.forgetIdle()
	}
	if name != "" {
		f.name = name
	}
	f.registered, f.active, f.suppressed = true, true, false
	a.visitAll()
}

func (a *Allocator) addFramework(id, name, roleName string) *framework {
	if roleName == "" {
		roleName = structs.DefaultRole
	}
	f := &framework{id: id, name: name, role: roleName, filters: map[*node]*filter{}}
	a.frameworks[id] = f
	i, _ := slices.BinarySearchFunc(a.fwList, id, func(x *framework, id string) int { return strings.Compare(x.id, id) })
	a.fwList = slices.Insert(a.fwList, i, f)
	a.role(roleName).members++
	return f
}

// DeactivateFramework stops offers to a framework that disconnected; its
// outstanding offers are rescinded with reason. It stays registered.
func (a *Allocator) DeactivateFramework(id, reason string) {
	f := a.frameworks[id]
	if f == nil {
		return
	}
	f.active = false
	a.rescindAll(f, reason)
}

// RemoveFramework unregisters a framework: its offers are rescinded with
// reason and its filters dropped. Its usage keeps counting until its
// allocations are gone.
func (a *Allocator) RemoveFramework(id, reason string) {
	f := a.frameworks[id]
	if f == nil {
		return
	}
	f.active, f.registered = false, false
	a.rescindAll(f, reason)
	a.dropFilters(f)
	a.forgetIdle()
}

func (a *Allocator) rescindAll(f *framework, reason string) {
	for _, n := range a.nodeList {
		if n.offer != nil && n.offer.fw == f {
			a.rescind(n.offer, reason, false, a.lastNow)
		}
	}
}

// Suppress stops offers to a framework until it revives.
func (a *Allocator) Suppress(id string) error {
	f := a.frameworks[id]
	if f == nil || !f.registered {
		return fmt.Errorf("%w: %s", ErrUnknownFramework, id)
	}
	f.suppressed = true
	return nil
}

// Revive clears a framework's filters and suppression: every free node
// is offered again.
func (a *Allocator) Revive(id string) error {
	f := a.frameworks[id]
	if f == nil || !f.registered {
		return fmt.Errorf("%w: %s", ErrUnknownFramework, id)
	}
	f.suppressed = false
	a.dropFilters(f)
	a.visitAll()
	return nil
}

// forgetIdle drops unregistered frameworks that no longer hold anything.
func (a *Allocator) forgetIdle() {
	for i := 0; i < len(a.fwList); i++ {
		f := a.fwList[i]
		if f.registered || !f.allocated().IsZero() || f.offers > 0 {
			continue
		}
		a.role(f.role).members--
		delete(a.frameworks, f.id)
		a.fwList = slices.Delete(a.fwList, i, i+1)
		i--
	}
}

func (a *Allocator) role(name string) *role {
	r := a.roles[name]
	if r == nil {
		rc := a.cfg.Roles[name]
		w := rc.Weight
		if w <= 0 {
			w = 1
		}
		r = &role{name: name, weight: w, quota: rc.Quota}
		a.roles[name] = r
	}
	return r
}

// addAlloc changes one of a framework's allocation figures (field) by
// sign*res, and its role's allocation with it.
func (a *Allocator) addAlloc(f *framework, field *structs.Resources, res structs.Resources, sign int64) {
	if sign > 0 {
		*field = field.Add(res)
	} else {
		*field = field.Sub(res)
	}
	a.addRoleAlloc(a.role(f.role), res, sign)
}

func (a *Allocator) addRoleAlloc(r *role, res structs.Resources, sign int64) {
	if sign > 0 {
		r.allocated = r.allocated.Add(res)
	} else {
		r.allocated = r.allocated.Sub(res)
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
