package scheduler

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gantry-project/gantry/internal/structs"
)

// Host ports in resource fit. A job that asks for ports (structs.Network)
// fits a node only if its static ports are free there and its dynamic
// ones can be picked from the node's range; a node's used ports are those
// of its live allocations (their Ports) plus what this pass placed there.
// Jobs without ports never reach this code, so the placement hot path of
// port-less jobs is unchanged.

// ErrPortTaken is CheckNodeFit's error when a placement's host port is
// held by another live allocation on the node (two schedulers raced).
var ErrPortTaken = errors.New("port taken")

// ReasonPortTaken is the "why pending" key of a node where a static port
// is held: "port 8080 taken".
func ReasonPortTaken(port int) string { return "port " + strconv.Itoa(port) + " taken" }

// ReasonPortsExhausted is the key of a node whose dynamic range has too
// few free ports left.
const ReasonPortsExhausted = "dynamic ports exhausted"

// PortHoldersReader is implemented by State views whose AllocsByNode hides
// allocations (two-level's offer views, so that frameworks cannot preempt):
// the placer reads a node's used ports from PortHolders instead, as ports
// are taken whoever holds them.
type PortHoldersReader interface {
	PortHolders(nodeID string) []*structs.Allocation
}

// portSet is the host ports in use on one node.
type portSet map[int]struct{}

// usedPorts returns the ports of the live allocations in allocs, leaving
// out those gone reports (stopped or replaced by the plan).
func usedPorts(allocs []*structs.Allocation, gone func(*structs.Allocation) bool) portSet {
	s := portSet{}
	for _, a := range allocs {
		if len(a.Ports) == 0 || a.Terminal() || (gone != nil && gone(a)) {
			continue
		}
		for _, p := range a.Ports {
			s[p.Value] = struct{}{}
		}
	}
	return s
}

// portsReason says why the job's ports do not fit a node whose used ports
// are used and dynamic range r, or "".
func portsReason(net *structs.Network, used portSet, r structs.PortRange) string {
	dynamic := 0
	for _, p := range net.Ports {
		if p.Static == 0 {
			dynamic++
			continue
		}
		if _, taken := used[p.Static]; taken {
			return ReasonPortTaken(p.Static)
		}
	}
	if dynamic == 0 {
		return ""
	}
	free := r.Max - r.Min + 1
	for v := range used {
		if v >= r.Min && v <= r.Max {
			free--
		}
	}
	for _, p := range net.Ports {
		if p.Static >= r.Min && p.Static <= r.Max {
			free-- // a static port inside the range is not free either
		}
	}
	if free < dynamic {
		return ReasonPortsExhausted
	}
	return ""
}

// assignPorts picks the job's ports on a node where portsReason is "":
// static ones as asked, dynamic ones from r starting at a random offset
// (rnd in [0, size of r)) and probing upwards, wrapping. It adds them to
// used.
func assignPorts(net *structs.Network, used portSet, r structs.PortRange, rnd int) []structs.AllocPort {
	out := make([]structs.AllocPort, len(net.Ports))
	for i, p := range net.Ports {
		if p.Static > 0 {
			out[i] = structs.AllocPort{Label: p.Label, Value: p.Static, To: p.To}
			used[p.Static] = struct{}{}
		}
	}
	size := r.Max - r.Min + 1
	next := rnd
	for i, p := range net.Ports {
		if p.Static > 0 {
			continue
		}
		for tries := 0; tries < size; tries++ {
			v := r.Min + (next+tries)%size
			if _, taken := used[v]; !taken {
				out[i] = structs.AllocPort{Label: p.Label, Value: v, To: p.To}
				used[v] = struct{}{}
				next += tries + 1
				break
			}
		}
	}
	return out
}

// nodePorts returns the ports in use on the node at position i, read on
// first need and then kept up to date with this pass's placements.
func (p *Placer) nodePorts(i int) portSet {
	if s, ok := p.portsAt[i]; ok {
		return s
	}
	if p.portsAt == nil {
		p.portsAt = map[int]portSet{}
	}
	var allocs []*structs.Allocation
	if r, ok := p.state.(PortHoldersReader); ok {
		allocs = r.PortHolders(p.nodes[i].ID)
	} else {
		allocs = p.nodeAllocs(i)
	}
	s := usedPorts(allocs, func(a *structs.Allocation) bool { return p.removed[a.ID] })
	// Placements already in the plan for this node (an earlier job of a
	// gang, or copies placed before the Placer saw the node) hold theirs.
	id := p.nodes[i].ID
	for _, a := range p.plan.Placements {
		if a.NodeID == id {
			for _, pt := range a.Ports {
				s[pt.Value] = struct{}{}
			}
		}
	}
	p.portsAt[i] = s
	return s
}

// portsFit is the port part of a node's fit for the job: "" or the reason.
func (p *Placer) portsFit(i int) string {
	return portsReason(p.job.Network, p.nodePorts(i), p.nodes[i].DynamicPortRange())
}

// takePorts assigns the job's ports on the node at position i.
func (p *Placer) takePorts(i int) []structs.AllocPort {
	r := p.nodes[i].DynamicPortRange()
	return assignPorts(p.job.Network, p.nodePorts(i), r, p.rng.IntN(r.Max-r.Min+1))
}

// checkPorts is CheckNodeFit's port check: no placement's host port is
// held by a live allocation left on the node or by another placement.
func checkPorts(node *structs.Node, existing []*structs.Allocation, removed map[string]bool, placements []*structs.Allocation) error {
	asked := false
	for _, pl := range placements {
		asked = asked || len(pl.Ports) > 0
	}
	if !asked {
		return nil
	}
	return PortCollision(node.ID, existing, func(a *structs.Allocation) bool { return removed[a.ID] }, placements)
}

// PortCollision reports a host port that two of the node's allocations
// would hold: the live ones in existing (minus those gone says leave,
// and those a placement replaces by ID) and the placements. Plan appliers
// call it when a placement has ports.
func PortCollision(nodeID string, existing []*structs.Allocation, gone func(*structs.Allocation) bool, placements []*structs.Allocation) error {
	replaced := map[string]bool{}
	for _, pl := range placements {
		replaced[pl.ID] = true
	}
	used := usedPorts(existing, func(a *structs.Allocation) bool { return replaced[a.ID] || (gone != nil && gone(a)) })
	for _, pl := range placements {
		for _, pt := range pl.Ports {
			if _, taken := used[pt.Value]; taken {
				return fmt.Errorf("node %s: %w: %d (%s of %s)", nodeID, ErrPortTaken, pt.Value, pt.Label, pl.Name)
			}
			used[pt.Value] = struct{}{}
		}
	}
	return nil
}
