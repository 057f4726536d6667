package scheduler_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// rowsView adds usage rows (computed by a scan, as the state store keeps
// them) to a schedtest view, so the Placer takes its O(1) path.
type rowsView struct {
	*schedtest.View
	reads int
}

func (v *rowsView) NodeUsage(nodeID string) structs.Resources {
	v.reads++
	var u structs.Resources
	for _, a := range v.AllocsByNode(nodeID) {
		if !a.Terminal() {
			u = u.Add(a.Resources)
		}
	}
	return u
}

var _ scheduler.NodeUsageReader = (*rowsView)(nil)

// TestUsageRowsDecideLikeScans: per seed, a random cluster (nodes of two
// sizes, allocations of several jobs and priorities, some terminal) and a
// job that needs placements, replacements of an old version (stops) and
// perhaps preemption: ComputePlan decides exactly the same plan whether
// node usage comes from the rows or from scanning each node.
func TestUsageRowsDecideLikeScans(t *testing.T) {
	var stops, preemptions int
	defer func() {
		t.Logf("plans with stops %d, with preemptions %d", stops, preemptions)
		if !t.Failed() && (stops == 0 || preemptions == 0) {
			t.Error("no seed exercised stops or preemptions")
		}
	}()
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			var nodes []*structs.Node
			for i := range 6 {
				cpu := int64(2000 + 2000*rng.IntN(2))
				nodes = append(nodes, schedtest.Node(fmt.Sprintf("n%02d", i), cpu, cpu))
			}
			low := schedtest.Job("low", 0, 900, 600)
			low.Priority = 10
			web := schedtest.Job("web", 6+rng.IntN(20), 400, 300)
			web.Priority = 70
			web.Version = 2
			oldWeb := *web
			oldWeb.Version = 1
			var allocs []*structs.Allocation
			for i := range 40 {
				n := nodes[rng.IntN(len(nodes))].ID
				var a *structs.Allocation
				if rng.IntN(3) == 0 {
					a = schedtest.Alloc(&oldWeb, i%web.Count, n) // old version: replaced
				} else {
					a = schedtest.Alloc(low, i, n)
				}
				a.ID = fmt.Sprintf("%s-%d", a.ID, i)
				switch rng.IntN(6) {
				case 0:
					a.ClientStatus = structs.AllocClientComplete
				case 1:
					a.DesiredStatus = structs.AllocDesiredStop
				}
				allocs = append(allocs, a)
			}
			view := schedtest.NewView(9, nodes, []*structs.Job{low, web}, allocs)
			compute := func(st scheduler.State) *scheduler.Result {
				res, err := scheduler.ComputePlan(scheduler.Options{Rand: rng2(seed), Now: fixedNow}, st, "web")
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			rows := &rowsView{View: view}
			a, b := compute(view), compute(rows)
			if !reflect.DeepEqual(a.Plan, b.Plan) || a.Placed != b.Placed || a.Unplaced != b.Unplaced {
				t.Fatalf("plans differ:\nscan %+v\nrows %+v", a.Plan, b.Plan)
			}
			if len(a.Plan.Stops) > 0 {
				stops++
			}
			if len(a.Plan.Preemptions) > 0 {
				preemptions++
			}
			if len(a.Plan.Placements) > 0 && rows.reads == 0 {
				t.Fatal("the rows were never read: the test compares the scan with itself")
			}
		})
	}
}

func rng2(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }
