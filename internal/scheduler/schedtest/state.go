// Package schedtest is an in-memory cluster for testing and benchmarking
// schedulers: a mutable State store with consistent snapshots, a Planner
// that applies plans with the same node-fit check as the server's applier,
// and fixtures. The scheduler's own tests, benchmarks, the simulator and
// other packages' tests use it.
package schedtest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// State is a mutable in-memory cluster state, safe for concurrent use.
// Objects stored are never modified in place (updates store copies), so
// snapshots can share them.
type State struct {
	mu       sync.RWMutex
	index    uint64
	nodes    map[string]*structs.Node
	jobs     map[string]*structs.Job
	allocs   map[string]*structs.Allocation
	failures map[string]*structs.PlacementFailure

	// Now stamps modify times of client updates; nil = time.Now.
	Now func() time.Time
}

// NewState returns an empty state at index 1.
func NewState() *State {
	return &State{
		index:    1,
		nodes:    map[string]*structs.Node{},
		jobs:     map[string]*structs.Job{},
		allocs:   map[string]*structs.Allocation{},
		failures: map[string]*structs.PlacementFailure{},
	}
}

func (s *State) now() int64 {
	if s.Now != nil {
		return s.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// bumpLocked advances the index; callers hold mu.
func (s *State) bumpLocked() uint64 {
	s.index++
	return s.index
}

// Index returns the current index.
func (s *State) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// UpsertNode stores a copy of n.
func (s *State) UpsertNode(n *structs.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := n.Copy()
	c.ModifyIndex = s.bumpLocked()
	if old := s.nodes[c.ID]; old != nil {
		c.CreateIndex = old.CreateIndex
	} else {
		c.CreateIndex = c.ModifyIndex
	}
	s.nodes[c.ID] = c
}

// UpsertJob stores a copy of j. Version is the caller's business, as it is
// the server's: bump it to make existing allocations out of date.
func (s *State) UpsertJob(j *structs.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := j.Copy()
	c.ModifyIndex = s.bumpLocked()
	if old := s.jobs[c.ID]; old != nil {
		c.CreateIndex = old.CreateIndex
	} else {
		c.CreateIndex = c.ModifyIndex
	}
	s.jobs[c.ID] = c
}

// PurgeJob removes a job, its allocations and its failure record.
func (s *State) PurgeJob(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bumpLocked()
	delete(s.jobs, id)
	delete(s.failures, id)
	for aid, a := range s.allocs {
		if a.JobID == id {
			delete(s.allocs, aid)
		}
	}
}

// UpsertAllocs stores copies of allocations as they are (fixtures); it
// does not check fit.
func (s *State) UpsertAllocs(allocs ...*structs.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.bumpLocked()
	for _, a := range allocs {
		c := a.Copy()
		if c.CreateIndex == 0 {
			c.CreateIndex = idx
		}
		c.ModifyIndex = idx
		s.allocs[c.ID] = c
	}
}

// SetNodeStatus changes a node's status as the server's FSM does: a node
// going down has its live allocations marked lost (client) and stop
// (desired).
func (s *State) SetNodeStatus(id string, status structs.NodeStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	if n == nil {
		return fmt.Errorf("node %s: not found", id)
	}
	idx := s.bumpLocked()
	c := n.Copy()
	c.Status, c.ModifyIndex = status, idx
	s.nodes[id] = c
	if status == structs.NodeStatusDown {
		for aid, a := range s.allocs {
			if a.NodeID == id && !a.Terminal() {
				u := a.Copy()
				u.ClientStatus, u.DesiredStatus = structs.AllocClientLost, structs.AllocDesiredStop
				u.DesiredDescription = "node down"
				u.ModifyIndex, u.ModifyTime = idx, s.now()
				s.allocs[aid] = u
			}
		}
	}
	return nil
}

// SetDrain turns draining on or off.
func (s *State) SetDrain(id string, drain bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	if n == nil {
		return fmt.Errorf("node %s: not found", id)
	}
	c := n.Copy()
	c.Drain, c.ModifyIndex = drain, s.bumpLocked()
	s.nodes[id] = c
	return nil
}

// SetClientStatus records an agent's report on an allocation.
func (s *State) SetClientStatus(allocID, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.allocs[allocID]
	if a == nil {
		return fmt.Errorf("allocation %s: not found", allocID)
	}
	u := a.Copy()
	u.ClientStatus = status
	u.ModifyIndex, u.ModifyTime = s.bumpLocked(), s.now()
	s.allocs[allocID] = u
	return nil
}

// Alloc returns an allocation or nil.
func (s *State) Alloc(id string) *structs.Allocation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.allocs[id]
}

// Failure returns the stored placement failure of a job, or nil.
func (s *State) Failure(jobID string) *structs.PlacementFailure {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.failures[jobID]
}

// LiveAllocs returns the live allocations of a job, ordered by index.
func (s *State) LiveAllocs(jobID string) []*structs.Allocation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*structs.Allocation
	for _, a := range s.allocs {
		if a.JobID == jobID && !a.Terminal() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b *structs.Allocation) int { return a.Index - b.Index })
	return out
}

// CheckInvariants returns an error naming every node whose live
// allocations exceed its capacity or hold one host port twice.
func (s *State) CheckInvariants() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	used := map[string]structs.Resources{}
	type nodePort struct {
		node string
		port int
	}
	holder := map[nodePort]string{}
	var errs []string
	for _, a := range s.allocs {
		if !a.Terminal() {
			used[a.NodeID] = used[a.NodeID].Add(a.Resources)
			for _, p := range a.Ports {
				k := nodePort{a.NodeID, p.Value}
				if other, dup := holder[k]; dup {
					errs = append(errs, fmt.Sprintf("node %s: port %d held by %s and %s", a.NodeID, p.Value, other, a.Name))
				}
				holder[k] = a.Name
			}
		}
	}
	for id, u := range used {
		n := s.nodes[id]
		if n == nil {
			errs = append(errs, fmt.Sprintf("node %s: missing but holds %s", id, u))
			continue
		}
		if ok, dim := n.Capacity.Fits(u); !ok {
			errs = append(errs, fmt.Sprintf("node %s: over-committed on %s: %s used of %s", id, dim, u, n.Capacity))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("invariant broken: %v", errs)
	}
	return nil
}

// Snapshot returns a consistent read-only view of the current state.
func (s *State) Snapshot() *View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	nodes := make([]*structs.Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n)
	}
	// Map order is random; a sorted list keeps seeded runs reproducible.
	slices.SortFunc(nodes, func(a, b *structs.Node) int { return cmp(a.ID, b.ID) })
	allocs := make([]*structs.Allocation, 0, len(s.allocs))
	for _, a := range s.allocs {
		allocs = append(allocs, a)
	}
	slices.SortFunc(allocs, func(a, b *structs.Allocation) int { return cmp(a.ID, b.ID) })
	jobs := make([]*structs.Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		jobs = append(jobs, j)
	}
	v := NewView(s.index, nodes, jobs, allocs)
	for k, f := range s.failures {
		v.failures[k] = f
	}
	return v
}

// SnapshotFunc adapts Snapshot to the signature schedulers take.
func (s *State) SnapshotFunc() func() (scheduler.State, error) {
	return func() (scheduler.State, error) { return s.Snapshot(), nil }
}

func cmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
