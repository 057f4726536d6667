package scheduler_test

import (
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// quotaView adds namespace quotas to a test view; usage is a scan (the
// server's store keeps it as a counter).
type quotaView struct {
	scheduler.State
	quotas map[string]*structs.Quota
}

func (v quotaView) NamespaceQuota(ns string) *structs.Quota { return v.quotas[ns] }

func (v quotaView) NamespaceUsage(ns string) structs.Resources {
	var used structs.Resources
	for _, n := range v.Nodes() {
		for _, a := range v.AllocsByNode(n.ID) {
			if !a.Terminal() && structs.JobNamespace(a.JobID) == ns {
				used = used.Add(a.Resources)
			}
		}
	}
	return used
}

var _ scheduler.QuotaReader = quotaView{}

// nsJob is schedtest.Job in a namespace.
func nsJob(ns, name string, count int, cpu, mem int64) *structs.Job {
	j := schedtest.Job(name, count, cpu, mem)
	j.Namespace, j.ID = ns, structs.JobKey(ns, name)
	return j
}

// TestPlacerQuota: the placement core places copies while the job's
// namespace stays within its quota and records why the rest are pending;
// the job's own stops free room in the same pass; other namespaces and
// views without quotas are not limited.
func TestPlacerQuota(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quota     *structs.Quota
		job       *structs.Job
		existing  int // live copies of job already placed
		stopFirst bool
		placed    int
		message   string
	}{
		{name: "memory", quota: &structs.Quota{MemoryMB: 4096}, job: nsJob("team-a", "web", 5, 100, 1000),
			placed: 4, message: "quota team-a: memory 3.9/4 GiB"},
		{name: "cpu", quota: &structs.Quota{CPU: 2500}, job: nsJob("team-a", "web", 4, 1000, 10),
			placed: 2, message: "quota team-a: cpu 2/2.5 cores"},
		{name: "small memory quota in MiB", quota: &structs.Quota{MemoryMB: 500}, job: nsJob("team-a", "web", 3, 10, 200),
			placed: 2, message: "quota team-a: memory 400/500 MiB"},
		{name: "existing allocations count", quota: &structs.Quota{MemoryMB: 3000}, job: nsJob("team-a", "web", 4, 100, 1000),
			existing: 2, placed: 1, message: "quota team-a: memory 2.9/2.9 GiB"},
		{name: "the job's own stops free room", quota: &structs.Quota{MemoryMB: 2000}, job: nsJob("team-a", "web", 2, 100, 1000),
			existing: 2, stopFirst: true, placed: 2},
		{name: "no quota", job: nsJob("team-a", "web", 5, 100, 1000), placed: 5},
		{name: "another namespace's quota", quota: nil, job: nsJob("team-b", "web", 5, 100, 1000), placed: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := schedtest.NewState()
			for _, id := range []string{"n1", "n2", "n3"} {
				st.UpsertNode(schedtest.Node(id, 64000, 64000))
			}
			st.UpsertJob(tc.job)
			var stops []structs.AllocStop
			for i := range tc.existing {
				a := schedtest.Alloc(tc.job, 100+i, "n1")
				st.UpsertAllocs(a)
				stops = append(stops, structs.AllocStop{AllocID: a.ID, NodeID: "n1", Desired: structs.AllocDesiredStop})
			}
			v := quotaView{State: st.Snapshot(), quotas: map[string]*structs.Quota{}}
			if tc.quota != nil {
				v.quotas["team-a"] = tc.quota
			}
			plan := &structs.Plan{JobID: tc.job.ID}
			if tc.stopFirst {
				plan.Stops = stops
			}
			p, err := scheduler.NewPlacer(scheduler.Options{Rand: rng(1), Now: fixedNow}, v, tc.job, plan)
			if err != nil {
				t.Fatal(err)
			}
			placed := 0
			for i := range tc.job.Count {
				if p.Place(scheduler.PlaceRequest{Index: i}) != nil {
					placed++
				}
			}
			if placed != tc.placed {
				t.Fatalf("placed %d, want %d", placed, tc.placed)
			}
			f := p.Failure()
			switch {
			case tc.message == "" && f != nil:
				t.Fatalf("unexpected failure %q", f.Message)
			case tc.message != "" && (f == nil || f.Message != tc.message || f.Unplaced != tc.job.Count-tc.placed):
				t.Fatalf("failure %+v, want %q with %d unplaced", f, tc.message, tc.job.Count-tc.placed)
			}
		})
	}
}
