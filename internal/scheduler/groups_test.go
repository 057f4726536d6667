package scheduler_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// groupsJob is a canonical, valid service job with a group per spec
// "name count cpu" (memory 64 MiB each), the mock driver.
func groupsJob(t *testing.T, id string, groups ...structs.TaskGroup) *structs.Job {
	t.Helper()
	j := &structs.Job{Name: id, Version: 1, Groups: groups}
	j.Canonicalize()
	if err := j.Validate(nil); err != nil {
		t.Fatal(err)
	}
	return j
}

func tg(name string, count int, cpu int64, tweaks ...func(*structs.TaskGroup)) structs.TaskGroup {
	g := structs.TaskGroup{Name: name, Count: count, Driver: "mock", Resources: structs.Resources{CPU: cpu, MemoryMB: 64}}
	for _, f := range tweaks {
		f(&g)
	}
	return g
}

// byGroup counts live allocations per group and checks their names.
func byGroup(t *testing.T, allocs []*structs.Allocation) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, a := range allocs {
		if want := structs.AllocGroupName(a.JobID, a.Group, a.Index); a.Name != want {
			t.Errorf("allocation %s named %q, want %q", a.ID, a.Name, want)
		}
		out[a.Group] = append(out[a.Group], a.Index)
	}
	for g := range out {
		slices.Sort(out[g])
	}
	return out
}

// TestGroupsPlace: each group's copies are placed with its own count,
// resources and index range, named job.group[i], with the whole job
// embedded; stops and scale-downs work per group.
func TestGroupsPlace(t *testing.T) {
	st := schedtest.NewState()
	for i := range 3 {
		st.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 4000, 4096))
	}
	job := groupsJob(t, "shop", tg("web", 3, 100), tg("cache", 1, 700))
	st.UpsertJob(job)

	res, _ := schedule(t, st, "shop", 1)
	if res.Placed != 4 || res.Unplaced != 0 {
		t.Fatalf("placed %d unplaced %d", res.Placed, res.Unplaced)
	}
	live := st.LiveAllocs("shop")
	got := byGroup(t, live)
	if !slices.Equal(got["web"], []int{0, 1, 2}) || !slices.Equal(got["cache"], []int{0}) || len(got) != 2 {
		t.Fatalf("indexes by group = %v", got)
	}
	for _, a := range live {
		want := int64(100)
		if a.Group == "cache" {
			want = 700
		}
		if a.Resources.CPU != want {
			t.Errorf("%s: cpu %d, want %d (its group's)", a.Name, a.Resources.CPU, want)
		}
		if a.Job == nil || !a.Job.HasGroups() || a.GroupJob() == nil || a.GroupJob().Group != a.Group {
			t.Errorf("%s: embedded job %+v does not give the group's view", a.Name, a.Job)
		}
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}

	// Nothing to do on a second pass.
	if res, _ := schedule(t, st, "shop", 2); !res.Plan.IsNoOp() {
		t.Fatalf("second pass not a no-op: %+v", res.Plan)
	}

	// Scale web down to 1 and cache up to 2: only those copies move.
	j2 := job.Copy()
	j2.Groups[0].Count, j2.Groups[1].Count = 1, 2
	j2.Canonicalize()
	st.UpsertJob(j2)
	res, _ = schedule(t, st, "shop", 3)
	if res.Placed != 1 || len(res.Plan.Stops) != 2 {
		t.Fatalf("scale: placed %d, stops %+v", res.Placed, res.Plan.Stops)
	}
	got = byGroup(t, st.LiveAllocs("shop"))
	if !slices.Equal(got["web"], []int{0}) || !slices.Equal(got["cache"], []int{0, 1}) {
		t.Fatalf("after scaling: %v", got)
	}

	// A group removed from the job has its copies stopped.
	j3 := j2.Copy()
	j3.Groups = j3.Groups[:1]
	j3.Version = 2
	j3.Canonicalize()
	st.UpsertJob(j3)
	res, _ = schedule(t, st, "shop", 4)
	descs := map[string]int{}
	for _, s := range res.Plan.Stops {
		descs[s.Description]++
	}
	if descs[scheduler.DescGroupRemoved] != 2 {
		t.Fatalf("stops after removing cache: %v", descs)
	}
	got = byGroup(t, st.LiveAllocs("shop"))
	if len(got["cache"]) != 0 || !slices.Equal(got["web"], []int{0}) {
		t.Fatalf("after removing cache: %v", got)
	}
}

// TestGroupsShareNodes: a later group's placements see the earlier
// group's in the same plan, so a node is never over-committed and
// dynamic ports never collide between groups.
func TestGroupsShareNodes(t *testing.T) {
	st := schedtest.NewState()
	n := schedtest.Node("n1", 1000, 4096)
	n.Attributes[structs.NodeAttrDynamicPorts] = "20000-20003"
	st.UpsertNode(n)
	ports := func(g *structs.TaskGroup) {
		g.Network = &structs.Network{Ports: []structs.Port{{Label: "http"}}}
	}
	// 3 x 300 + 2 x 300 millicores asked of a 1000-millicore node: 3 fit.
	st.UpsertJob(groupsJob(t, "shop", tg("a", 2, 300, ports), tg("b", 2, 300, ports)))
	res, _ := schedule(t, st, "shop", 1)
	if res.Placed != 3 || res.Unplaced != 1 {
		t.Fatalf("placed %d unplaced %d, want 3 and 1", res.Placed, res.Unplaced)
	}
	if f := st.Failure("shop"); f == nil || f.Unplaced != 1 {
		t.Fatalf("failure = %+v", f)
	}
	seen := map[int]string{}
	for _, a := range st.LiveAllocs("shop") {
		for _, p := range a.Ports {
			if other, dup := seen[p.Value]; dup {
				t.Fatalf("port %d given to %s and %s", p.Value, other, a.Name)
			}
			seen[p.Value] = a.Name
		}
	}
	if len(seen) != 3 {
		t.Fatalf("ports %v, want one per copy", seen)
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}
