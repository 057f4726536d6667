package scheduler

import (
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func pnNode(id string, mut ...func(*structs.Node)) *structs.Node {
	n := &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
		Capacity: structs.Resources{CPU: 1000, MemoryMB: 1024}, Labels: map[string]string{"zone": "a"}}
	for _, m := range mut {
		m(n)
	}
	return n
}

func pnJob(typ structs.JobType) *structs.Job {
	j := &structs.Job{ID: "web", Name: "web", Type: typ, Driver: "mock", Version: 2,
		Resources:   structs.Resources{CPU: 400, MemoryMB: 100},
		Constraints: []structs.Constraint{{Label: "zone", Operator: "=", Value: "a"}}}
	j.Canonicalize()
	return j
}

// TestReconcilePerNode: one live copy of the current version per eligible
// node; the table's situations and what each node gets.
func TestReconcilePerNode(t *testing.T) {
	type want struct {
		place   []string // node IDs
		stops   map[string]string
		delayed int
	}
	failedAt := func(ago int64) func(*structs.Allocation) {
		return func(a *structs.Allocation) { a.ModifyTime = now0.UnixNano() - ago*1e9 }
	}
	cases := []struct {
		name   string
		typ    structs.JobType
		nodes  []*structs.Node
		allocs []*structs.Allocation
		want   want
	}{
		{"every eligible node", structs.JobTypeSystem,
			[]*structs.Node{pnNode("n1"), pnNode("n2"), pnNode("n3", func(n *structs.Node) { n.Labels["zone"] = "b" }),
				pnNode("n4", func(n *structs.Node) { n.Status = structs.NodeStatusDown }),
				pnNode("n5", func(n *structs.Node) { n.Ineligible = "maintenance" })},
			nil, want{place: []string{"n1", "n2"}}},
		{"kept, duplicate, old version replaced on its node", structs.JobTypeSystem,
			[]*structs.Node{pnNode("n1"), pnNode("n2")},
			[]*structs.Allocation{
				ra("a1", 0, "n1", 2, "run", "running"), ra("a1b", 0, "n1", 2, "run", "running"),
				ra("a2", 0, "n2", 1, "run", "running"),
			},
			want{place: []string{"n2"}, stops: map[string]string{"a1": DescDuplicate, "a2": DescJobUpdated}}},
		{"drained, down, gone, no longer eligible", structs.JobTypeSystem,
			[]*structs.Node{pnNode("n1", func(n *structs.Node) { n.Drain = true }),
				pnNode("n2", func(n *structs.Node) { n.Status = structs.NodeStatusDown }),
				pnNode("n3", func(n *structs.Node) { n.Labels["zone"] = "b" }),
				pnNode("n4", func(n *structs.Node) { n.Ineligible = "maintenance" })},
			[]*structs.Allocation{
				ra("a1", 0, "n1", 2, "run", "running"), ra("a2", 0, "n2", 2, "run", "running"),
				ra("a3", 0, "n3", 2, "run", "running"), ra("a4", 0, "n4", 2, "run", "running"),
				ra("a5", 0, "gone", 2, "run", "running"),
			},
			want{stops: map[string]string{"a1": DescNodeDrained, "a2": DescNodeDown, "a3": DescNodeIneligible, "a5": DescNodeDown}}},
		{"sysbatch completed stays done, old version runs again", structs.JobTypeSysBatch,
			[]*structs.Node{pnNode("n1"), pnNode("n2")},
			[]*structs.Allocation{
				ra("a1", 0, "n1", 2, "run", "complete"), ra("a2", 0, "n2", 1, "run", "complete"),
			},
			want{place: []string{"n2"}}},
		{"system completed copy is replaced", structs.JobTypeSystem,
			[]*structs.Node{pnNode("n1")},
			[]*structs.Allocation{ra("a1", 0, "n1", 2, "run", "complete")},
			want{place: []string{"n1"}}},
		{"failed copy waits for its delay, then is replaced", structs.JobTypeSystem,
			[]*structs.Node{pnNode("n1"), pnNode("n2")},
			[]*structs.Allocation{
				ra("a1", 0, "n1", 2, "run", "failed", failedAt(1)),
				ra("a2", 0, "n2", 2, "run", "failed", failedAt(3600)),
			},
			want{place: []string{"n2"}, delayed: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ReconcilePerNode(pnJob(tc.typ), tc.allocs, tc.nodes, now0)
			var placed []string
			for _, p := range r.Place {
				placed = append(placed, p.NodeID)
			}
			if !slices.Equal(placed, tc.want.place) {
				t.Fatalf("placed on %v, want %v", placed, tc.want.place)
			}
			stops := map[string]string{}
			for _, s := range r.Stops {
				stops[s.AllocID] = s.Description
			}
			if len(stops) != len(tc.want.stops) {
				t.Fatalf("stops %v, want %v", stops, tc.want.stops)
			}
			for id, d := range tc.want.stops {
				if stops[id] != d {
					t.Fatalf("stops %v, want %v", stops, tc.want.stops)
				}
			}
			if len(r.Delayed) != tc.want.delayed || (tc.want.delayed > 0 && r.RetryAt.IsZero()) {
				t.Fatalf("delayed %+v retry %v", r.Delayed, r.RetryAt)
			}
		})
	}
	// A stopped job, or a template, stops everything.
	j := pnJob(structs.JobTypeSystem)
	j.Stop = true
	if r := ReconcilePerNode(j, []*structs.Allocation{ra("a1", 0, "n1", 2, "run", "running")}, []*structs.Node{pnNode("n1")}, now0); len(r.Stops) != 1 || len(r.Place) != 0 {
		t.Fatalf("stopped job: %+v", r)
	}
}
