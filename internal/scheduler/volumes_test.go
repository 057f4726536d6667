package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestHostVolumePlacement: a copy that claims a host volume lands only on a
// node whose agent declares it (read-write claims not on read-only ones),
// the copy's extra tasks add to its ask and need their drivers, and a copy
// with nowhere to go says which volume is missing on how many nodes.
func TestHostVolumePlacement(t *testing.T) {
	node := func(name string, attrs map[string]string) *structs.Node {
		n := schedtest.Node(name, 1000, 1024)
		n.Attributes = map[string]string{"driver.exec": "true", "driver.mock": "true"}
		for k, v := range attrs {
			n.Attributes[k] = v
		}
		return n
	}
	hv := structs.NodeAttrHostVolumePrefix + "data"
	tests := []struct {
		name     string
		nodes    []*structs.Node
		readOnly bool
		cpu      int64 // the extra task's
		driver   string
		want     string // node name placed on, or ""
		filtered map[string]int
		message  string
	}{
		{name: "volume on one node", nodes: []*structs.Node{node("a", nil), node("b", map[string]string{hv: "rw"}), node("c", nil)},
			driver: "mock", cpu: 100, want: "b"},
		{name: "missing everywhere", nodes: []*structs.Node{node("a", nil), node("b", nil), node("c", nil)},
			driver: "mock", cpu: 100, filtered: map[string]int{"host volume data missing": 3},
			message: "3 nodes excluded by host volume data missing"},
		{name: "read-only volume, read-write claim", nodes: []*structs.Node{node("a", map[string]string{hv: "ro"})},
			driver: "mock", cpu: 100, filtered: map[string]int{"host volume data read-only": 1}},
		{name: "read-only volume, read-only claim", nodes: []*structs.Node{node("a", map[string]string{hv: "ro"})},
			readOnly: true, driver: "mock", cpu: 100, want: "a"},
		{name: "extra task's driver missing", nodes: []*structs.Node{node("a", map[string]string{hv: "rw"})},
			driver: "docker", cpu: 100, filtered: map[string]int{"driver docker missing": 1}},
		{name: "sum of tasks does not fit", nodes: []*structs.Node{node("a", map[string]string{hv: "rw"})},
			driver: "mock", cpu: 600, message: "1 node excluded by cpu"},
	}
	for _, tt := range tests {
		for _, cached := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cache=%v", tt.name, cached), func(t *testing.T) {
				job := schedtest.Job("db", 1, 500, 100)
				job.Volumes = map[string]structs.VolumeRequest{"d": {Type: structs.VolumeTypeHost, Source: "data", ReadOnly: tt.readOnly}}
				job.Tasks = []structs.Task{{Name: "side", Driver: tt.driver, Resources: structs.Resources{CPU: tt.cpu, MemoryMB: 10}}}
				v := schedtest.NewView(1, tt.nodes, []*structs.Job{job}, nil)
				opts := scheduler.Options{SampleSize: 8, Rand: rng(1), Now: fixedNow}
				if cached {
					opts.Cache = scheduler.NewFeasibilityCache(16)
				}
				p, err := scheduler.NewPlacer(opts, v, job, &structs.Plan{JobID: job.ID})
				if err != nil {
					t.Fatal(err)
				}
				a := p.Place(scheduler.PlaceRequest{})
				if tt.want != "" {
					if a == nil || a.NodeName != tt.want && a.NodeID != tt.want {
						t.Fatalf("placed on %+v, want node %s (failure %+v)", a, tt.want, p.Failure())
					}
					if want := (structs.Resources{CPU: 500 + tt.cpu, MemoryMB: 110}); a.Resources != want {
						t.Fatalf("copy resources %v, want the sum %v", a.Resources, want)
					}
					return
				}
				if a != nil {
					t.Fatalf("placed on %s, want none", a.NodeID)
				}
				f := p.Failure()
				if tt.filtered != nil && fmt.Sprint(f.NodesFiltered) != fmt.Sprint(tt.filtered) {
					t.Fatalf("filtered %v, want %v", f.NodesFiltered, tt.filtered)
				}
				if tt.message != "" && f.Message != tt.message {
					t.Fatalf("message %q, want %q", f.Message, tt.message)
				}
			})
		}
	}
}
