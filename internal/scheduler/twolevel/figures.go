package twolevel

import (
	"errors"
	"fmt"

	"github.com/gantry-project/gantry/internal/structs"
)

// FrameworkFigures is one framework's standing with the allocator.
type FrameworkFigures struct {
	ID, Name, Role       string
	Registered, Active   bool
	Suppressed           bool
	Weight               float64
	DominantShare        float64 // weighted: the role's weight divides it
	Allocated, Offered   structs.Resources
	Offers               int
	OffersSent, Accepted uint64
	Declined, Rescinded  uint64
	Expired              uint64
	Used, BeingLaunched  structs.Resources
	FiltersActive        int
	RoleShare            float64
}

// Framework returns a framework's figures.
func (a *Allocator) Framework(id string) (FrameworkFigures, bool) {
	f := a.frameworks[id]
	if f == nil {
		return FrameworkFigures{}, false
	}
	r := a.role(f.role)
	return FrameworkFigures{
		ID: f.id, Name: f.name, Role: f.role,
		Registered: f.registered, Active: f.active, Suppressed: f.suppressed,
		Weight: r.weight, DominantShare: a.share(f.allocated()) / r.weight,
		Allocated: f.allocated(), Offered: f.offered, Offers: f.offers,
		OffersSent: f.stats.offersSent, Accepted: f.stats.accepted, Declined: f.stats.declined,
		Rescinded: f.stats.rescinded, Expired: f.stats.expired,
		Used: f.used, BeingLaunched: f.pending, FiltersActive: len(f.filters),
		RoleShare: a.roleShare(r),
	}, true
}

// Frameworks returns every framework's figures, by ID.
func (a *Allocator) Frameworks() []FrameworkFigures {
	out := make([]FrameworkFigures, 0, len(a.fwList))
	for _, f := range a.fwList {
		ff, _ := a.Framework(f.id)
		out = append(out, ff)
	}
	return out
}

// AllocFigures are the allocator's totals since it was built.
type AllocFigures struct {
	OffersOutstanding                    int
	OffersSent, Accepted, Declined       uint64
	Rescinded, Expired, Rounds           uint64
	HoldP50Ms, HoldP99Ms                 float64
	Total, FreeUnreserved                structs.Resources
	Nodes, NodesQueued, FrameworksActive int
}

// Figures returns the allocator's totals.
func (a *Allocator) Figures() AllocFigures {
	p := a.stats.holds.Percentiles(50, 99)
	active := 0
	for _, f := range a.fwList {
		if f.active {
			active++
		}
	}
	return AllocFigures{
		OffersOutstanding: len(a.offers),
		OffersSent:        a.stats.offersSent, Accepted: a.stats.accepted, Declined: a.stats.declined,
		Rescinded: a.stats.rescinded, Expired: a.stats.expired, Rounds: a.stats.rounds,
		HoldP50Ms: p[0], HoldP99Ms: p[1],
		Total: a.total, FreeUnreserved: a.freeUnreserved,
		Nodes: len(a.nodeList), NodesQueued: len(a.visit), FrameworksActive: active,
	}
}

// checkInvariants verifies the allocator's bookkeeping from scratch: what
// the tests run after every step. It returns every violation found.
func (a *Allocator) checkInvariants() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	offered := map[*framework]structs.Resources{}
	offersOf := map[*framework]int{}
	var total, freeUnreserved structs.Resources
	seenOffers := 0
	for _, n := range a.nodeList {
		if a.nodes[n.id] != n {
			bad("node %s: list and map disagree", n.id)
		}
		if n.ready {
			total = total.Add(n.capacity)
			if n.role == "" {
				freeUnreserved = freeUnreserved.Add(n.free())
			}
		}
		if o := n.offer; o != nil {
			seenOffers++
			if a.offers[o.id] != o {
				bad("node %s: offer %s is not in the offer table", n.id, o.id)
			}
			if o.node != n {
				bad("offer %s: on node %s, held by node %s", o.id, o.node.id, n.id)
			}
			if !n.ready {
				bad("offer %s: node %s is not ready", o.id, n.id)
			}
			if !o.fw.active {
				bad("offer %s: framework %s is not active", o.id, o.fw.id)
			}
			offered[o.fw] = offered[o.fw].Add(o.res)
			offersOf[o.fw]++
			if ok, dim := n.capacity.Fits(n.used.Add(n.pending).Add(o.res)); !ok {
				bad("node %s: used %s + launching %s + offered %s exceed capacity %s (%s)", n.id, n.used, n.pending, o.res, n.capacity, dim)
			}
		}
		if n.pending.CPU < 0 || n.pending.MemoryMB < 0 {
			bad("node %s: negative launching %s", n.id, n.pending)
		}
	}
	closedQueued, liveQueued := 0, 0
	for _, o := range a.offerExpiry.q[a.offerExpiry.head:] {
		if o == nil || !o.queued {
			bad("offer queue holds an offer not marked queued")
			continue
		}
		if o.closed {
			closedQueued++
		} else {
			liveQueued++
		}
	}
	if closedQueued != a.offerExpiry.nclose {
		bad("offer queue: %d closed offers counted, %d in it", a.offerExpiry.nclose, closedQueued)
	}
	if a.cfg.OfferTimeout > 0 && liveQueued != len(a.offers) {
		bad("offer queue: %d live offers, %d outstanding", liveQueued, len(a.offers))
	}
	if seenOffers != len(a.offers) {
		bad("%d offers on nodes, %d in the offer table: an offer is outstanding twice or lost", seenOffers, len(a.offers))
	}
	if total != a.total {
		bad("total %s, counted %s", a.total, total)
	}
	if freeUnreserved != a.freeUnreserved {
		bad("free unreserved %s, counted %s", a.freeUnreserved, freeUnreserved)
	}
	used := map[string]structs.Resources{}
	for _, n := range a.nodeList {
		for _, u := range n.usedBy {
			used[u.Framework] = used[u.Framework].Add(u.Resources)
		}
	}
	roleAlloc := map[string]structs.Resources{}
	for _, f := range a.fwList {
		if a.frameworks[f.id] != f {
			bad("framework %s: list and map disagree", f.id)
		}
		if f.offered != offered[f] || f.offers != offersOf[f] {
			bad("framework %s: offered %s in %d offers, counted %s in %d", f.id, f.offered, f.offers, offered[f], offersOf[f])
		}
		if f.used != used[f.id] {
			bad("framework %s: used %s, nodes say %s", f.id, f.used, used[f.id])
		}
		roleAlloc[f.role] = roleAlloc[f.role].Add(f.allocated())
	}
	for name, r := range a.roles {
		if r.allocated != roleAlloc[name] {
			bad("role %s: allocated %s, its frameworks hold %s", name, r.allocated, roleAlloc[name])
		}
	}
	return errors.Join(errs...)
}
