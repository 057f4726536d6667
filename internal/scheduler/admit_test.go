package scheduler_test

import (
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestAdmission: a node admits a copy when it may receive placements,
// passes the job's constraints and driver, and its free room holds the
// copy; a job with groups when any group fits.
func TestAdmission(t *testing.T) {
	web := schedtest.Job("web", 1, 500, 256)
	web.Constraints = []structs.Constraint{{Label: "zone", Operator: structs.OpEqual, Value: "a"}}
	docker := schedtest.Job("dock", 1, 100, 64)
	docker.Driver = "docker"
	grouped := schedtest.Job("grp", 1, 100, 64)
	grouped.Groups = []structs.TaskGroup{
		{Name: "big", Count: 1, Driver: "mock", Resources: structs.Resources{CPU: 900, MemoryMB: 64}},
		{Name: "small", Count: 1, Driver: "mock", Resources: structs.Resources{CPU: 200, MemoryMB: 512},
			Constraints: []structs.Constraint{{Label: "zone", Operator: structs.OpEqual, Value: "b"}}},
	}
	zoneA := schedtest.Node("a1", 1000, 1024, "zone=a")
	zoneB := schedtest.Node("b1", 1000, 1024, "zone=b")
	draining := schedtest.Node("a2", 1000, 1024, "zone=a")
	draining.Drain = true
	down := schedtest.Node("a3", 1000, 1024, "zone=a")
	down.Status = structs.NodeStatusDown
	ineligible := schedtest.Node("a4", 1000, 1024, "zone=a")
	ineligible.Ineligible = "disk full"
	room := func(cpu, mem int64) structs.Resources { return structs.Resources{CPU: cpu, MemoryMB: mem} }

	for _, tc := range []struct {
		name string
		job  *structs.Job
		node *structs.Node
		free structs.Resources
		want bool
	}{
		{"fits", web, zoneA, room(500, 256), true},
		{"short of cpu", web, zoneA, room(499, 1024), false},
		{"short of memory", web, zoneA, room(1000, 255), false},
		{"constraint", web, zoneB, room(1000, 1024), false},
		{"draining", web, draining, room(1000, 1024), false},
		{"down", web, down, room(1000, 1024), false},
		{"ineligible", web, ineligible, room(1000, 1024), false},
		{"driver missing", docker, zoneA, room(1000, 1024), false},
		{"group big fits", grouped, zoneA, room(900, 100), true},
		{"group small only in zone b", grouped, zoneA, room(300, 600), false},
		{"group small in zone b", grouped, zoneB, room(300, 600), true},
		{"no group fits", grouped, zoneB, room(150, 1024), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scheduler.NewAdmission(tc.job).Admits(tc.node, tc.free); got != tc.want {
				t.Fatalf("Admits = %v, want %v", got, tc.want)
			}
		})
	}
	if got := scheduler.NewAdmission(grouped).MinAsk(); got != room(200, 64) {
		t.Fatalf("MinAsk = %v, want the smallest ask per dimension (200, 64)", got)
	}
}

// TestEvaluationIndex: an evaluation says which view it decided on, and
// how many copies it left unplaced.
func TestEvaluationIndex(t *testing.T) {
	st := schedtest.NewState()
	st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	st.UpsertJob(schedtest.Job("web", 3, 400, 64))
	want := st.Index()
	env := scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: schedtest.NewPlanner(st), Now: fixedNow}
	e, err := scheduler.NewEvaluator(scheduler.DefaultConfig(), env, &recordingHost{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ev := e.Evaluate(t.Context(), scheduler.Options{Rand: rng(1), Now: fixedNow}, "web", 50)
	e.Wait()
	if ev.Index != want || ev.Unplaced != 1 || ev.Outcome != scheduler.OutcomeDone {
		t.Fatalf("evaluation index %d, unplaced %d, outcome %s; want %d, 1, done", ev.Index, ev.Unplaced, ev.Outcome, want)
	}
}
