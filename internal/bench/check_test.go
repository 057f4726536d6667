package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestChecker feeds the final-state check states that break each
// invariant and one that keeps them all.
func TestChecker(t *testing.T) {
	w, err := ParseWorkload([]byte(`
name: t
nodes: [{count: 2, cpu: 100, memory_mb: 100}]
jobs: [{name: j, count: 1, tasks: 2, cpu: 60, memory_mb: 10}]
`))
	if err != nil {
		t.Fatal(err)
	}
	node := func(id string) *structs.Node {
		return &structs.Node{ID: id, Name: id, Capacity: structs.Resources{CPU: 100, MemoryMB: 100}}
	}
	alloc := func(id, job string, idx int, desired, client string) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: job, Index: idx, Name: structs.AllocName(job, idx),
			Resources: structs.Resources{CPU: 60, MemoryMB: 10}, DesiredStatus: desired, ClientStatus: client}
	}
	run, stop := structs.AllocDesiredRun, structs.AllocDesiredStop
	running, complete, failed := structs.AllocClientRunning, structs.AllocClientComplete, structs.AllocClientFailed
	type placement struct {
		node   string
		allocs []*structs.Allocation
	}
	for _, tc := range []struct {
		name     string
		received []int // indexes nodes saw placed
		state    []placement
		ok       bool
		want     string // in Problems
	}{
		{"all good", []int{0, 1}, []placement{
			{"a", []*structs.Allocation{alloc("1", "j-0", 0, run, running), alloc("x", "j-0", 1, stop, complete)}},
			{"b", []*structs.Allocation{alloc("2", "j-0", 1, run, complete)}},
		}, true, ""},
		{"over-committed", []int{0, 1}, []placement{
			{"a", []*structs.Allocation{alloc("1", "j-0", 0, run, running), alloc("2", "j-0", 1, run, running)}},
		}, false, "over-committed on cpu"},
		{"placed twice", []int{0, 1}, []placement{
			{"a", []*structs.Allocation{alloc("1", "j-0", 0, run, running)}},
			{"b", []*structs.Allocation{alloc("2", "j-0", 0, run, running), alloc("3", "j-0", 1, run, failed)}},
		}, false, "j-0[0] placed 2 times"},
		{"received but lost", []int{0, 1}, []placement{
			{"a", []*structs.Allocation{alloc("1", "j-0", 0, run, running)}},
		}, false, "j-0[1] was received by a node but is not on the server"},
		{"never placed", []int{0}, []placement{
			{"a", []*structs.Allocation{alloc("1", "j-0", 0, run, running)}},
		}, false, ""},
		{"not in the workload", []int{0, 1}, []placement{
			{"a", []*structs.Allocation{alloc("1", "j-0", 0, run, running), alloc("9", "other", 0, run, running)}},
			{"b", []*structs.Allocation{alloc("2", "j-0", 1, run, running)}},
		}, false, "not part of the workload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(time.Now, w)
			for _, i := range tc.received {
				rec.placedAlloc(&structs.Allocation{JobID: "j-0", Index: i}, 0)
			}
			c := newChecker(w, rec)
			for _, p := range tc.state {
				c.addNode(node(p.node), p.allocs)
			}
			res := c.finish()
			if res.OK != tc.ok {
				t.Fatalf("OK = %v, want %v: %+v", res.OK, tc.ok, res)
			}
			if tc.want != "" && !strings.Contains(strings.Join(res.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q; want one mentioning %q", res.Problems, tc.want)
			}
		})
	}
}
