package schedtest

import (
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// View is an immutable scheduler.State built from slices; benchmarks and the
// simulator build one directly with NewView.
type View struct {
	index    uint64
	nodes    []*structs.Node
	nodeByID map[string]*structs.Node
	jobs     map[string]*structs.Job
	byNode   map[string][]*structs.Allocation
	byJob    map[string][]*structs.Allocation
	failures map[string]*structs.PlacementFailure
}

var _ scheduler.State = (*View)(nil)

// NewView indexes the given objects; it keeps the pointers, which must not
// be modified afterwards.
func NewView(index uint64, nodes []*structs.Node, jobs []*structs.Job, allocs []*structs.Allocation) *View {
	v := &View{
		index:    index,
		nodes:    nodes,
		nodeByID: make(map[string]*structs.Node, len(nodes)),
		jobs:     make(map[string]*structs.Job, len(jobs)),
		byNode:   map[string][]*structs.Allocation{},
		byJob:    map[string][]*structs.Allocation{},
		failures: map[string]*structs.PlacementFailure{},
	}
	for _, n := range nodes {
		v.nodeByID[n.ID] = n
	}
	for _, j := range jobs {
		v.jobs[j.ID] = j
	}
	for _, a := range allocs {
		v.byNode[a.NodeID] = append(v.byNode[a.NodeID], a)
		v.byJob[a.JobID] = append(v.byJob[a.JobID], a)
	}
	return v
}

func (v *View) Index() uint64                                    { return v.index }
func (v *View) Nodes() []*structs.Node                           { return v.nodes }
func (v *View) NodeByID(id string) *structs.Node                 { return v.nodeByID[id] }
func (v *View) JobByID(id string) *structs.Job                   { return v.jobs[id] }
func (v *View) AllocsByNode(nodeID string) []*structs.Allocation { return v.byNode[nodeID] }
func (v *View) AllocsByJob(jobID string) []*structs.Allocation   { return v.byJob[jobID] }

// PlacementFailure returns the job's stored placement failure, or nil.
func (v *View) PlacementFailure(jobID string) *structs.PlacementFailure {
	return v.failures[jobID]
}
