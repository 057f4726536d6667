package peerexec

import (
	"slices"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// jobView is the scheduler.State an owner decides one job on: the peers
// as nodes (from their loads and the cluster's failure agreement), and
// the job's own allocations (records and admits in flight). Usage is the
// peer's last load plus what this owner admitted there since, so the
// placement core sees room as the peer will; the peer's own check is the
// exact one.
type jobView struct {
	e     *Engine
	oj    *ownedJob
	nodes map[string]*structs.Node
	usage map[string]structs.Resources
}

var (
	_ scheduler.State           = (*jobView)(nil)
	_ scheduler.NodeUsageReader = (*jobView)(nil)
)

// noLoadYet marks a member whose load has not arrived: its copies stay,
// it receives none.
const noLoadYet = "no load received yet"

func (e *Engine) view(oj *ownedJob, use map[string]structs.Resources) *jobView {
	v := &jobView{e: e, oj: oj, nodes: map[string]*structs.Node{}, usage: map[string]structs.Resources{}}
	members := map[string]bool{}
	for _, id := range e.cv.Members {
		members[id] = true
	}
	for id := range e.loads {
		members[id] = true
	}
	for id := range members {
		var n *structs.Node
		if l := e.loads[id]; l != nil && l.load.Node != nil {
			n = l.load.Node.Copy()
			v.usage[id] = l.load.Used
		} else {
			n = &structs.Node{Name: id, Status: structs.NodeStatusReady, Ineligible: noLoadYet}
		}
		n.ID = id
		if e.failed(id) {
			n.Status = structs.NodeStatusDown
		} else {
			n.Status = structs.NodeStatusReady
		}
		if until, ok := oj.refused[id]; ok {
			if e.now.Before(until) {
				n.Ineligible = "refused the job"
			} else {
				delete(oj.refused, id)
			}
		}
		v.nodes[id] = n
	}
	for id, r := range use {
		v.usage[id] = v.usage[id].Add(r)
	}
	return v
}

// ownerUse is what this owner added on each peer that the peer's last
// load does not show yet: copies admitted since, and admits in flight.
// ownerTick computes it once for all the jobs it reconciles (reconcile
// keeps it up to date), not once per job: it scans every owned copy.
func (e *Engine) ownerUse() map[string]structs.Resources {
	use := map[string]structs.Resources{}
	for _, oj := range e.jobs {
		for id, a := range oj.allocs {
			if e.pendingUse(oj, id, a) {
				use[a.NodeID] = use[a.NodeID].Add(a.Resources)
			}
		}
		for _, p := range oj.props {
			use[p.alloc.NodeID] = use[p.alloc.NodeID].Add(p.alloc.Resources)
		}
	}
	return use
}

// pendingUse reports whether a live copy was admitted after its peer's
// last load (the load's usage does not count it yet).
func (e *Engine) pendingUse(oj *ownedJob, id string, a *structs.Allocation) bool {
	if a.Terminal() {
		return false
	}
	l := e.loads[a.NodeID]
	ad, ok := oj.admits[id]
	return ok && l != nil && l.load.Seq < ad.seq
}

func (v *jobView) Index() uint64 { return v.e.index }

func (v *jobView) Nodes() []*structs.Node {
	out := make([]*structs.Node, 0, len(v.nodes))
	for _, id := range sortedKeys(v.nodes) {
		out = append(out, v.nodes[id])
	}
	return out
}

func (v *jobView) NodeByID(id string) *structs.Node { return v.nodes[id] }

func (v *jobView) JobByID(id string) *structs.Job {
	if id == v.oj.job.ID {
		return v.oj.job
	}
	return nil
}

func (v *jobView) allocs() []*structs.Allocation {
	out := make([]*structs.Allocation, 0, len(v.oj.allocs)+len(v.oj.props))
	for _, id := range sortedKeys(v.oj.allocs) {
		out = append(out, v.oj.allocs[id])
	}
	for _, id := range sortedKeys(v.oj.props) {
		out = append(out, v.oj.props[id].alloc)
	}
	return out
}

func (v *jobView) AllocsByNode(node string) []*structs.Allocation {
	var out []*structs.Allocation
	for _, a := range v.allocs() {
		if a.NodeID == node {
			out = append(out, a)
		}
	}
	return out
}

func (v *jobView) AllocsByJob(id string) []*structs.Allocation {
	if id != v.oj.job.ID {
		return nil
	}
	return v.allocs()
}

func (v *jobView) PlacementFailure(string) *structs.PlacementFailure { return v.oj.failure }

func (v *jobView) NodeUsage(node string) structs.Resources { return v.usage[node] }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
