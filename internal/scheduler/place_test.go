package scheduler_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

var epoch = time.Unix(1_800_000_000, 0)

func fixedNow() time.Time { return epoch }

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

func newPlacer(v scheduler.State, job *structs.Job, sample int, seed uint64) (*scheduler.Placer, *structs.Plan) {
	plan := &structs.Plan{JobID: job.ID}
	p, err := scheduler.NewPlacer(scheduler.Options{SampleSize: sample, Rand: rng(seed), Now: fixedNow}, v, job, plan)
	if err != nil {
		panic(err) // Rand is set
	}
	return p, plan
}

// TestRanking checks that bin-packing picks the fullest node that fits and
// spread the emptiest, whatever the shuffle order.
func TestRanking(t *testing.T) {
	filler := schedtest.Job("filler", 3, 1, 1)
	nodes := []*structs.Node{
		schedtest.Node("empty", 4000, 4096),
		schedtest.Node("half", 4000, 4096),
		schedtest.Node("full-ish", 4000, 4096),
		schedtest.Node("too-full", 4000, 4096),
	}
	used := func(idx int, node string, cpu, mem int64) *structs.Allocation {
		a := schedtest.Alloc(filler, idx, node)
		a.Resources = structs.Resources{CPU: cpu, MemoryMB: mem}
		return a
	}
	allocs := []*structs.Allocation{
		used(0, "half", 2000, 2048),
		used(1, "full-ish", 3000, 3072),
		used(2, "too-full", 3500, 3900),
	}
	v := schedtest.NewView(10, nodes, []*structs.Job{filler}, allocs)
	tests := []struct {
		placement string
		want      string
	}{
		{structs.PlacementBinpack, "full-ish"},
		{structs.PlacementSpread, "empty"},
	}
	for _, tt := range tests {
		for seed := uint64(1); seed <= 20; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", tt.placement, seed), func(t *testing.T) {
				job := schedtest.Job("web", 1, 1000, 1024)
				job.Placement = tt.placement
				p, _ := newPlacer(v, job, 8, seed)
				a := p.Place(scheduler.PlaceRequest{Index: 0})
				if a == nil {
					t.Fatalf("not placed: %+v", p.Failure())
				}
				if a.NodeID != tt.want {
					t.Fatalf("placed on %s, want %s", a.NodeID, tt.want)
				}
			})
		}
	}
}

// TestCopyPenaltySpreadsEqualNodes: with bin-packing on two empty nodes,
// the penalty for a second copy on the same node does not outweigh the
// packing gain when it is large, but breaks ties between equal nodes.
func TestCopyPenalty(t *testing.T) {
	nodes := []*structs.Node{schedtest.Node("a", 10000, 10240), schedtest.Node("b", 10000, 10240)}
	v := schedtest.NewView(1, nodes, nil, nil)
	tests := []struct {
		name     string
		cpu, mem int64
		same     bool // both copies on one node
	}{
		{"small copies spread", 100, 100, false}, // gain 0.01 < penalty 0.1
		{"large copies pack", 4000, 4096, true},  // gain 0.4 > penalty 0.1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := schedtest.Job("web", 2, tt.cpu, tt.mem)
			p, _ := newPlacer(v, job, 8, 7)
			a0 := p.Place(scheduler.PlaceRequest{Index: 0})
			a1 := p.Place(scheduler.PlaceRequest{Index: 1})
			if (a0.NodeID == a1.NodeID) != tt.same {
				t.Fatalf("copies on %s and %s, want same node = %v", a0.NodeID, a1.NodeID, tt.same)
			}
		})
	}
}

// TestSampleBound: a placement visits SampleSize feasible nodes with room
// (plus any filtered nodes met on the way), not the whole cluster.
func TestSampleBound(t *testing.T) {
	var nodes []*structs.Node
	for i := range 1000 {
		n := schedtest.Node(fmt.Sprintf("n%04d", i), 4000, 4096)
		if i%2 == 1 {
			n.Drain = true
		}
		nodes = append(nodes, n)
	}
	v := schedtest.NewView(1, nodes, nil, nil)
	tests := []struct {
		sample int
		want   int
	}{{1, 1}, {4, 4}, {8, 8}, {0, scheduler.DefaultSampleSize}, {50, 50}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.sample), func(t *testing.T) {
			job := schedtest.Job("web", 1, 100, 100)
			p, _ := newPlacer(v, job, tt.sample, 3)
			if p.Place(scheduler.PlaceRequest{}) == nil {
				t.Fatal("not placed")
			}
			visited := p.NodesVisited()
			// Half the nodes drain: about twice the sample is visited, and
			// never a large part of the cluster.
			if visited < tt.want || visited > 6*tt.want+20 {
				t.Fatalf("visited %d nodes for sample %d", visited, tt.want)
			}
		})
	}
}

func TestPlacementFitsResources(t *testing.T) {
	tests := []struct {
		name      string
		cpu, mem  int64
		placed    bool
		exhausted string
	}{
		{"fits", 500, 500, true, ""},
		{"exactly full", 1000, 1024, true, ""},
		{"cpu too big", 1001, 10, false, "cpu"},
		{"memory too big", 10, 1025, false, "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := schedtest.NewView(1, []*structs.Node{schedtest.Node("n", 1000, 1024)}, nil, nil)
			p, plan := newPlacer(v, schedtest.Job("j", 1, tt.cpu, tt.mem), 8, 1)
			a := p.Place(scheduler.PlaceRequest{})
			if (a != nil) != tt.placed {
				t.Fatalf("placed = %v, want %v", a != nil, tt.placed)
			}
			if tt.placed {
				if len(plan.Placements) != 1 || a.DesiredStatus != structs.AllocDesiredRun || a.ClientStatus != structs.AllocClientPending {
					t.Fatalf("bad plan: %+v", plan.Placements)
				}
				return
			}
			f := p.Failure()
			if f.NodesExhausted[tt.exhausted] != 1 {
				t.Fatalf("exhausted = %v, want %s:1", f.NodesExhausted, tt.exhausted)
			}
		})
	}
}

// TestPlanCountsItsOwnPlacements: copies placed earlier in the same plan
// use up room, so a node is never over-filled by one plan.
func TestPlanCountsItsOwnPlacements(t *testing.T) {
	v := schedtest.NewView(1, []*structs.Node{schedtest.Node("n", 1000, 1024)}, nil, nil)
	p, plan := newPlacer(v, schedtest.Job("j", 3, 400, 100), 8, 1)
	placed := 0
	for i := range 3 {
		if p.Place(scheduler.PlaceRequest{Index: i}) != nil {
			placed++
		}
	}
	if placed != 2 || len(plan.Placements) != 2 {
		t.Fatalf("placed %d, want 2", placed)
	}
	if f := p.Failure(); f == nil || f.Unplaced != 1 || f.NodesExhausted["cpu"] != 1 {
		t.Fatalf("failure = %+v", f)
	}
}

func TestFailureMessage(t *testing.T) {
	zone := structs.Constraint{Label: "zone", Operator: "=", Value: "a"}
	var nodes []*structs.Node
	for i := range 3 {
		nodes = append(nodes, schedtest.Node(fmt.Sprintf("b%d", i), 4000, 4096, "zone=b"))
	}
	for i := range 7 {
		nodes = append(nodes, schedtest.Node(fmt.Sprintf("a%d", i), 4000, 1024, "zone=a"))
	}
	down := schedtest.Node("down", 4000, 4096, "zone=a")
	down.Status = structs.NodeStatusDown
	drain := schedtest.Node("drain", 4000, 4096, "zone=a")
	drain.Drain = true
	nodes = append(nodes, down, drain)

	job := schedtest.Job("db", 2, 1000, 2048)
	job.Constraints = []structs.Constraint{zone}
	v := schedtest.NewView(1, nodes, []*structs.Job{job}, nil)
	p, _ := newPlacer(v, job, 8, 1)
	for i := range 2 {
		if p.Place(scheduler.PlaceRequest{Index: i}) != nil {
			t.Fatal("placed, want failure")
		}
	}
	f := p.Failure()
	want := &structs.PlacementFailure{
		JobID: "db", Unplaced: 2, NodesEvaluated: 12,
		NodesFiltered:  map[string]int{"constraint zone = a": 3, "not ready": 1, "draining": 1},
		NodesExhausted: map[string]int{"memory": 7},
		Message:        "7 nodes excluded by memory, 3 by constraint zone = a, 1 by draining, 1 by not ready",
	}
	if !scheduler.SameFailure(f, want) {
		t.Fatalf("failure\n got %+v\nwant %+v", f, want)
	}

	t.Run("empty cluster", func(t *testing.T) {
		p, _ := newPlacer(schedtest.NewView(1, nil, nil, nil), job, 8, 1)
		p.Place(scheduler.PlaceRequest{})
		if m := p.Failure().Message; m != "no nodes in the cluster" {
			t.Fatalf("message = %q", m)
		}
	})
	t.Run("one node", func(t *testing.T) {
		f := &structs.PlacementFailure{NodesEvaluated: 1, NodesExhausted: map[string]int{"cpu": 1}}
		if m := scheduler.FailureMessage(f); m != "1 node excluded by cpu" {
			t.Fatalf("message = %q", m)
		}
	})
}

// TestDeterministicIDs: the same seed gives the same allocation IDs and
// nodes; IDs are UUID-shaped.
func TestDeterministicIDs(t *testing.T) {
	var nodes []*structs.Node
	for i := range 50 {
		nodes = append(nodes, schedtest.Node(fmt.Sprintf("n%02d", i), 4000, 4096))
	}
	v := schedtest.NewView(1, nodes, nil, nil)
	run := func() []string {
		p, _ := newPlacer(v, schedtest.Job("j", 5, 100, 100), 8, 42)
		var out []string
		for i := range 5 {
			a := p.Place(scheduler.PlaceRequest{Index: i})
			out = append(out, a.ID+"@"+a.NodeID)
		}
		return out
	}
	a, b := run(), run()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("runs differ:\n%v\n%v", a, b)
	}
	id := a[0][:36]
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '4' || id[18] != '-' || id[23] != '-' {
		t.Fatalf("not a UUID: %q", id)
	}
}
