package twolevel

import (
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Allocate runs one allocation round at now: offers expire and filters
// lapse first, then every node queued for a visit (its room grew, it was
// declined, a framework became eligible ...) whose free room is at least
// MinOffer is offered, whole, to one framework:
//
//  1. Quota: if some role holds less than its quota, the node goes to the
//     such role with the lowest weighted dominant share.
//  2. Fair share: otherwise to the role with the lowest weighted dominant
//     share, unless giving the node away would leave less unreserved room
//     than the roles below quota still need (the node then waits).
//
// Within the role, the framework with the lowest dominant share gets it.
// Only active, unsuppressed frameworks of the node's reservation role (if
// any) without a filter on the node are eligible. An offer counts toward
// its framework's share at once, so the next node of the same round sees
// the new shares (DRF's progressive filling, one node at a time).
//
// The cost is proportional to the nodes queued for a visit times the
// frameworks, not to the cluster: a node nobody can take leaves the queue
// until something changes for it.
func (a *Allocator) Allocate(now time.Time) {
	a.stats.rounds++
	a.Expire(now)
	visit := a.visit
	a.visit = nil
	if len(visit) == 0 {
		return
	}
	for _, n := range visit {
		n.visiting = false
	}
	if !a.anyEligible() {
		// Nobody can take anything: the nodes wait for a framework to
		// subscribe or revive, which queues them all again.
		return
	}
	headroom := a.headroom()
	start := a.rng.IntN(len(visit))
	for k := range visit {
		n := visit[(start+k)%len(visit)]
		if !n.ready || n.offer != nil {
			continue
		}
		free := n.free()
		if free.CPU < max(a.cfg.MinOffer.CPU, 1) || free.MemoryMB < max(a.cfg.MinOffer.MemoryMB, 1) {
			continue
		}
		f, blocked := a.choose(n, free, now, headroom)
		if blocked {
			// Held back for quota: look again next round.
			a.wantVisit(n)
			continue
		}
		if f == nil {
			continue
		}
		a.makeOffer(f, n, free, now)
		if !headroom.IsZero() {
			headroom = a.headroom()
		}
	}
}

// anyEligible reports whether some framework may receive offers now.
func (a *Allocator) anyEligible() bool {
	for _, f := range a.fwList {
		if f.active && !f.suppressed {
			return true
		}
	}
	return false
}

// choose picks the framework node n (with free room free) goes to, or
// reports that it is held back as quota headroom.
func (a *Allocator) choose(n *node, free structs.Resources, now time.Time, headroom structs.Resources) (*framework, bool) {
	var best, bestQuota *framework
	for _, f := range a.fwList {
		if !f.active || f.suppressed || !a.reservationAllows(n, f) || a.filtered(f, n, free, now) {
			continue
		}
		if a.belowQuota(a.roles[f.role]) && a.less(f, bestQuota) {
			bestQuota = f
		}
		if a.less(f, best) {
			best = f
		}
	}
	if bestQuota != nil {
		return bestQuota, false
	}
	if best == nil {
		return nil, false
	}
	if n.role == "" && !headroom.IsZero() {
		// Giving this node to a role without unmet quota must leave the
		// unmet quotas their room.
		left := a.freeUnreserved.Sub(free)
		if (headroom.CPU > 0 && left.CPU < headroom.CPU) || (headroom.MemoryMB > 0 && left.MemoryMB < headroom.MemoryMB) {
			return nil, true
		}
	}
	return best, false
}

// reservationAllows reports whether f may be offered node n.
func (a *Allocator) reservationAllows(n *node, f *framework) bool {
	return n.role == "" || n.role == f.role
}

// filtered reports whether f refused n's resources recently and the node
// offers no more than it refused.
func (a *Allocator) filtered(f *framework, n *node, free structs.Resources, now time.Time) bool {
	flt := f.filters[n]
	if flt == nil {
		return false
	}
	if !now.Before(flt.until) {
		a.dropFilter(f, n)
		return false
	}
	ok, _ := flt.refused.Fits(free)
	return ok
}

// less orders frameworks for an offer: role by weighted dominant share,
// then role name, then the framework's own dominant share, then ID. A nil
// other is beaten by anything.
func (a *Allocator) less(f, other *framework) bool {
	if other == nil {
		return true
	}
	rf, ro := a.roles[f.role], a.roles[other.role]
	if rf != ro {
		sf, so := a.roleShare(rf), a.roleShare(ro)
		if sf != so {
			return sf < so
		}
		return rf.name < ro.name
	}
	sf, so := a.share(f.allocated()), a.share(other.allocated())
	if sf != so {
		return sf < so
	}
	return f.id < other.id
}

// share is the dominant share of res: its largest fraction of the
// cluster's total in any dimension.
func (a *Allocator) share(res structs.Resources) float64 {
	s := 0.0
	if a.total.CPU > 0 {
		s = float64(res.CPU) / float64(a.total.CPU)
	}
	if a.total.MemoryMB > 0 {
		s = max(s, float64(res.MemoryMB)/float64(a.total.MemoryMB))
	}
	return s
}

// roleShare is a role's weighted dominant share.
func (a *Allocator) roleShare(r *role) float64 { return a.share(r.allocated) / r.weight }

// belowQuota reports whether a role holds less than its quota in some
// dimension the quota sets.
func (a *Allocator) belowQuota(r *role) bool {
	if r == nil || r.quota.IsZero() {
		return false
	}
	return (r.quota.CPU > 0 && r.allocated.CPU < r.quota.CPU) ||
		(r.quota.MemoryMB > 0 && r.allocated.MemoryMB < r.quota.MemoryMB)
}

// headroom is the room the roles below quota still need (Mesos's quota
// headroom): it must stay unallocated for them.
func (a *Allocator) headroom() structs.Resources {
	var h structs.Resources
	for _, r := range a.roles {
		if r.quota.IsZero() {
			continue
		}
		h.CPU += max(r.quota.CPU-r.allocated.CPU, 0)
		h.MemoryMB += max(r.quota.MemoryMB-r.allocated.MemoryMB, 0)
	}
	if len(a.cfg.Roles) > 0 {
		// Quota of roles with no framework yet counts too.
		for name, rc := range a.cfg.Roles {
			if _, ok := a.roles[name]; !ok && !rc.Quota.IsZero() {
				h = h.Add(rc.Quota)
			}
		}
	}
	return h
}

// makeOffer offers n's free room to f.
func (a *Allocator) makeOffer(f *framework, n *node, free structs.Resources, now time.Time) {
	a.seq++
	var id strings.Builder
	id.Grow(len(a.epoch) + 24)
	id.WriteString("o-")
	id.WriteString(a.epoch)
	id.WriteByte('-')
	var num [20]byte
	id.Write(strconv.AppendUint(num[:0], a.seq, 10))
	o := &offer{id: id.String(), fw: f, node: n, res: free, created: now}
	if a.cfg.OfferTimeout > 0 {
		o.expires = now.Add(a.cfg.OfferTimeout)
		a.offerExpiry.push(o)
	}
	a.uncount(n)
	n.offer = o
	a.count(n)
	a.addAlloc(f, &f.offered, free, +1)
	f.offers++
	a.offers[o.id] = o
	f.stats.offersSent++
	a.stats.offersSent++
	a.out = append(a.out, Output{Kind: OutputOffer, Framework: f.id, OfferID: o.id, NodeID: n.id,
		Resources: free, Expires: o.expires, node: n})
}
