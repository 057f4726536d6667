package architecture_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestTaskGroupsOnEveryArchitecture: on monolithic, shared-state and
// two-level, a job with two groups (counts 3 and
// 1, their own resources and dynamic ports) is placed whole by each
// architecture, each copy with its group's resources, and no node is
// over-committed or gives one port twice.
func TestTaskGroupsOnEveryArchitecture(t *testing.T) {
	all := slices.Clone(archs)
	all = append(all, struct {
		name string
		mod  func(*architecture.Config)
	}{"two-level", func(c *architecture.Config) { c.Architecture = architecture.TwoLevel }})
	for _, arch := range all {
		t.Run(arch.name, func(t *testing.T) { groupsScenario(t, arch.mod) })
	}
}

func groupsScenario(t *testing.T, pick func(*architecture.Config)) {
	h := schedtest.NewHarness(t)
	for i := 1; i <= 2; i++ {
		n := schedtest.Node(fmt.Sprintf("n%d", i), 1000, 4096)
		n.Attributes[structs.NodeAttrDynamicPorts] = "20000-20009"
		h.State.UpsertNode(n)
	}
	job := &structs.Job{Name: "shop", Version: 1, Groups: []structs.TaskGroup{
		{Name: "web", Count: 3, Driver: "mock", Resources: structs.Resources{CPU: 200, MemoryMB: 64},
			Network: &structs.Network{Ports: []structs.Port{{Label: "http"}}}},
		{Name: "cache", Count: 1, Driver: "mock", Resources: structs.Resources{CPU: 700, MemoryMB: 256}},
	}}
	job.Canonicalize()
	if err := job.Validate(nil); err != nil {
		t.Fatal(err)
	}
	h.State.UpsertJob(job)
	a := build(t, h, pick, nil)
	h.Run(a)
	a.Enqueue("shop", 50)
	h.WaitUntil("4 copies placed", func() bool { return len(h.State.LiveAllocs("shop")) == 4 })
	if err := h.State.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, al := range h.State.LiveAllocs("shop") {
		per[al.Group]++
		want := structs.Resources{CPU: 200, MemoryMB: 64}
		if al.Group == "cache" {
			want = structs.Resources{CPU: 700, MemoryMB: 256}
		}
		if al.Resources != want || al.Name != structs.AllocGroupName("shop", al.Group, al.Index) {
			t.Fatalf("%s: resources %v, want %v", al.Name, al.Resources, want)
		}
	}
	if per["web"] != 3 || per["cache"] != 1 {
		t.Fatalf("copies per group = %v", per)
	}
}
