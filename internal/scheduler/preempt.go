package scheduler

import (
	"slices"

	"github.com/gantry-project/gantry/internal/structs"
)

// preemptCost orders victim sets: lower is better. The highest evicted
// priority comes first (evict the least important work), then the share of
// the node's resources evicted, then the number of victims.
type preemptCost struct {
	maxPrio int
	share   float64
	count   int
}

func (c preemptCost) less(o preemptCost) bool {
	if c.maxPrio != o.maxPrio {
		return c.maxPrio < o.maxPrio
	}
	if c.share != o.share {
		return c.share < o.share
	}
	return c.count < o.count
}

// findPreemption is called once no node has room. Among feasible nodes
// (ready, constraints pass, capacity at least the ask) it looks for one where
// evicting live allocations of strictly lower priority, of other jobs, makes
// room, and picks the node and victim set with the lowest cost. Like
// placement it stops after SampleSize candidate nodes. Every position has
// been visited by the failed scan, so feasibility is known for all of them.
func (p *Placer) findPreemption(ask structs.Resources) (int, []*structs.Allocation) {
	best := -1
	var bestVictims []*structs.Allocation
	var bestCost preemptCost
	candidates := 0
	for seen := 0; seen < len(p.nodes) && candidates < p.sample; seen++ {
		i := p.next()
		n := p.nodes[i]
		if p.info[i].reason != "" {
			continue
		}
		if ok, _ := n.Capacity.Fits(ask); !ok {
			continue
		}
		victims, cost, ok := p.victimsOn(i, ask)
		if !ok {
			continue
		}
		candidates++
		if best < 0 || cost.less(bestCost) {
			best, bestVictims, bestCost = i, victims, cost
		}
	}
	return best, bestVictims
}

// victimsOn chooses the allocations to evict on node i so ask fits: lowest
// priority first and, within a priority, the biggest first (fewer victims);
// then it gives back any victim the room is not needed from, highest
// priority first.
func (p *Placer) victimsOn(i int, ask structs.Resources) ([]*structs.Allocation, preemptCost, bool) {
	n := p.nodes[i]
	in := p.usage(i)
	var cands []*structs.Allocation
	for _, a := range p.nodeAllocs(i) {
		if a.Terminal() || p.removed[a.ID] || a.JobID == p.job.ID || a.Priority >= p.job.Priority {
			continue
		}
		cands = append(cands, a)
	}
	if len(cands) == 0 {
		return nil, preemptCost{}, false
	}
	size := func(r structs.Resources) float64 { return share(r, n.Capacity) }
	slices.SortFunc(cands, func(a, b *structs.Allocation) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		sa, sb := size(a.Resources), size(b.Resources)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return cmpString(a.ID, b.ID) // deterministic order
	})
	free := n.Capacity.Sub(in.used)
	var victims []*structs.Allocation
	for _, a := range cands {
		if ok, _ := free.Fits(ask); ok {
			break
		}
		victims = append(victims, a)
		free = free.Add(a.Resources)
	}
	if ok, _ := free.Fits(ask); !ok {
		return nil, preemptCost{}, false
	}
	// Give back victims that turned out not to be needed.
	for k := len(victims) - 1; k >= 0; k-- {
		if ok, _ := free.Sub(victims[k].Resources).Fits(ask); ok {
			free = free.Sub(victims[k].Resources)
			victims = slices.Delete(victims, k, k+1)
		}
	}
	cost := preemptCost{count: len(victims)}
	for _, v := range victims {
		cost.maxPrio = max(cost.maxPrio, v.Priority)
		cost.share += size(v.Resources)
	}
	return victims, cost, true
}

// share is r as a fraction of capacity c, averaged over cpu and memory.
func share(r, c structs.Resources) float64 {
	s := 0.0
	if c.CPU > 0 {
		s += float64(r.CPU) / float64(c.CPU)
	}
	if c.MemoryMB > 0 {
		s += float64(r.MemoryMB) / float64(c.MemoryMB)
	}
	return s / 2
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
