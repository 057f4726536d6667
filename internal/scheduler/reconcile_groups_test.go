package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestReconcileGroups: each group is reconciled on its own indexes, with
// its own count and reschedule policy; copies of groups the job no longer
// has are stopped.
func TestReconcileGroups(t *testing.T) {
	nodes := map[string]*structs.Node{"n1": {ID: "n1", Status: structs.NodeStatusReady}}
	job := func(version uint64, groups ...structs.TaskGroup) *structs.Job {
		j := &structs.Job{ID: "web", Name: "web", Version: version, Groups: groups}
		j.Canonicalize()
		return j
	}
	g := func(name string, count int) structs.TaskGroup {
		return structs.TaskGroup{Name: name, Count: count, Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	}
	in := func(group string) func(*structs.Allocation) {
		return func(a *structs.Allocation) { a.Group = group }
	}
	failed := func(a *structs.Allocation) {
		a.ClientStatus = structs.AllocClientFailed
		a.ModifyTime = now0.UnixNano()
	}
	tests := []struct {
		name   string
		job    *structs.Job
		allocs []*structs.Allocation
		// want is "group: place idx...; stop id(desc)..." per group.
		want []string
	}{
		{"empty job places every group's copies",
			job(1, g("a", 2), g("b", 1)), nil,
			[]string{"a: place 0 1; stop", "b: place 0; stop"}},
		{"indexes count per group",
			job(1, g("a", 2), g("b", 2)),
			[]*structs.Allocation{ra("a0", 0, "n1", 1, run, "running", in("a")), ra("b0", 0, "n1", 1, run, "running", in("b"))},
			[]string{"a: place 1; stop", "b: place 1; stop"}},
		{"scale down one group",
			job(1, g("a", 1), g("b", 1)),
			[]*structs.Allocation{ra("a0", 0, "n1", 1, run, "running", in("a")), ra("a1", 1, "n1", 1, run, "running", in("a")),
				ra("b0", 0, "n1", 1, run, "running", in("b"))},
			[]string{"a: place; stop a1(scaled down)", "b: place; stop"}},
		{"removed group and implicit copies are stopped",
			job(2, g("a", 1)),
			[]*structs.Allocation{ra("a0", 0, "n1", 2, run, "running", in("a")), ra("gone0", 0, "n1", 1, run, "running", in("gone")),
				ra("old0", 0, "n1", 1, run, "running")},
			[]string{"a: place; stop gone0(" + DescGroupRemoved + ") old0(" + DescGroupRemoved + ")"}},
		{"new version replaces each group's copies",
			job(2, g("a", 1), g("b", 1)),
			[]*structs.Allocation{ra("a0", 0, "n1", 1, run, "running", in("a")), ra("b0", 0, "n1", 2, run, "running", in("b"))},
			[]string{"a: place 0; stop a0(job updated)", "b: place; stop"}},
		{"a failed copy waits for its group's reschedule delay",
			job(1, g("a", 1), g("b", 1)),
			[]*structs.Allocation{ra("a0", 0, "n1", 1, run, "failed", in("a"), failed), ra("b0", 0, "n1", 1, run, "running", in("b"))},
			[]string{"a: place; stop; delayed 0", "b: place; stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := ReconcileGroups(tt.job, tt.allocs, func(id string) *structs.Node { return nodes[id] }, now0)
			var got []string
			for _, r := range recs {
				var place, stops []string
				for _, p := range r.Place {
					place = append(place, fmt.Sprint(p.Index))
				}
				for _, s := range r.Stops {
					stops = append(stops, s.AllocID+"("+s.Description+")")
				}
				slices.Sort(stops)
				line := strings.TrimSpace(r.Group + ": place " + strings.Join(place, " "))
				line += "; " + strings.TrimSpace("stop "+strings.Join(stops, " "))
				if len(r.Delayed) > 0 {
					var d []string
					for _, x := range r.Delayed {
						d = append(d, fmt.Sprint(x.Index))
					}
					line += "; delayed " + strings.Join(d, " ")
				}
				if r.Job == nil || r.Job.Group != r.Group {
					t.Errorf("group %s: view %+v", r.Group, r.Job)
				}
				got = append(got, line)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}
