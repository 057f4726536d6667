package state

import (
	"slices"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// gcAlloc is an allocation of job j at idx created at index create, with
// its statuses.
func gcAlloc(id, j, node string, idx int, create uint64, desired, client string) *structs.Allocation {
	a := testAlloc(id, j, node, idx)
	a.CreateIndex, a.DesiredStatus, a.ClientStatus = create, desired, client
	return a
}

// checkConsistent checks every index of the allocation table against its
// ID tree (groups, node usage, deltas) and the node usage against a scan.
func checkConsistent(t *testing.T, s *Store, step string) {
	t.Helper()
	snap := s.Snapshot()
	m := allocModel{}
	for _, a := range snap.Allocs() {
		m[a.ID] = a
	}
	checkTable(t, snap.allocs, m, step)
	checkUsage(t, snap, step)
}

func ids(allocs []*structs.Allocation) []string {
	var out []string
	for _, a := range allocs {
		out = append(out, a.ID)
	}
	return out
}

// TestGarbageCollectAllocs: listed allocations go if they are still
// terminal and not running on their node, and their job is still at the
// index the leader chose them at (which of them the scheduler still needs
// is the leader's choice, NeededAllocs); the table's indexes stay
// consistent and the nodes' alloc index rows move, so agents learn of it.
func TestGarbageCollectAllocs(t *testing.T) {
	const (
		run, stop                 = structs.AllocDesiredRun, structs.AllocDesiredStop
		failed, complete, running = structs.AllocClientFailed, structs.AllocClientComplete, structs.AllocClientRunning
	)
	s := newStore(t)
	must(t, s.UpsertNode(1, testNode("n1", "one")))
	must(t, s.UpsertNode(2, testNode("n2", "two")))
	must(t, s.UpsertJob(3, testJob("web")))
	must(t, s.UpsertJob(4, testJob("batch")))
	allocs := []*structs.Allocation{
		gcAlloc("w-scaled", "web", "n2", 5, 0, stop, complete),
		gcAlloc("w-old", "web", "n1", 0, 0, run, failed),
		gcAlloc("w-stopping", "web", "n2", 1, 0, stop, running), // stopped, task still running: kept
		gcAlloc("w-live", "web", "n2", 1, 0, run, running),      // live: kept
		gcAlloc("b-failed", "batch", "n1", 1, 0, run, failed),   // its job changed since: kept
	}
	for i, a := range allocs {
		must(t, s.UpsertAllocs(uint64(20+i), []*structs.Allocation{a}))
	}
	checkConsistent(t, s, "before")
	ws := memdb.NewWatchSet()
	s.Snapshot().NodeAllocIndexWatch(ws, "n2")
	s.Snapshot().AllocsByJobWatch(ws, "web")

	req := &structs.GCRequest{Time: 99, Allocs: []structs.GCAllocs{
		{JobID: "web", ModifyIndex: 3, IDs: []string{"w-scaled", "w-old", "w-stopping", "w-live", "unknown", "b-failed"}},
		{JobID: "batch", ModifyIndex: 2, IDs: []string{"b-failed"}},
	}}
	res, err := s.GarbageCollect(40, req)
	must(t, err)
	if res != (GCResult{Allocs: 2}) {
		t.Fatalf("result %+v, want 2 allocations", res)
	}
	snap := s.Snapshot()
	if got, want := ids(snap.Allocs()), []string{"b-failed", "w-live", "w-stopping"}; !slices.Equal(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	checkConsistent(t, s, "after")
	for _, n := range []string{"n1", "n2"} {
		if idx, _ := snap.NodeAllocIndex(n); idx != 40 {
			t.Errorf("node %s alloc index %d, want 40 (its allocations were deleted)", n, idx)
		}
	}
	if got := snap.TableIndex(TableAllocs); got != 40 {
		t.Errorf("allocs table index %d, want 40", got)
	}
	if !firedNow(ws) {
		t.Error("watches of the node and job did not fire")
	}
	// Replaying the entry changes nothing and is no error.
	res, err = s.GarbageCollect(41, req)
	must(t, err)
	if res != (GCResult{}) || s.Snapshot().TableIndex(TableAllocs) != 40 {
		t.Fatalf("replay: %+v, index %d", res, s.Snapshot().TableIndex(TableAllocs))
	}
	// Allocations left by a job whose record is gone go under index 0.
	must(t, s.PurgeJob(42, "batch"))
	must(t, s.UpsertAllocs(43, []*structs.Allocation{gcAlloc("orphan", "batch", "n1", 0, 0, stop, complete)}))
	res, err = s.GarbageCollect(44, &structs.GCRequest{Allocs: []structs.GCAllocs{{JobID: "batch", IDs: []string{"orphan"}}}})
	must(t, err)
	if res != (GCResult{Allocs: 1}) || s.Snapshot().AllocByID("orphan") != nil {
		t.Fatalf("orphan: %+v", res)
	}
	checkConsistent(t, s, "orphan")
}

// TestGarbageCollectJobs: a listed job goes, with its allocations and
// placement failure, only if it is still at the listed ModifyIndex,
// finished, and all its allocations are collectable.
func TestGarbageCollectJobs(t *testing.T) {
	tests := []struct {
		name     string
		stop     bool
		batch    bool
		statuses []string // client statuses of its allocations (desired stop if stopped)
		stale    bool     // the request names an older ModifyIndex
		gone     bool
	}{
		{name: "stopped, all done", stop: true, statuses: []string{structs.AllocClientComplete, structs.AllocClientFailed}, gone: true},
		{name: "stopped, no allocations", stop: true, gone: true},
		{name: "stopped, one still running", stop: true, statuses: []string{structs.AllocClientComplete, structs.AllocClientRunning}},
		{name: "registered again since", stop: true, statuses: []string{structs.AllocClientComplete}, stale: true},
		{name: "batch, every copy complete", batch: true, statuses: []string{structs.AllocClientComplete, structs.AllocClientComplete}, gone: true},
		{name: "batch, one copy failed", batch: true, statuses: []string{structs.AllocClientComplete, structs.AllocClientFailed}},
		{name: "live service", statuses: []string{structs.AllocClientFailed, structs.AllocClientFailed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			must(t, s.UpsertNode(1, testNode("n1", "one")))
			j := testJob("j")
			if tc.batch {
				j.Type = structs.JobTypeBatch
			}
			must(t, s.UpsertJob(2, j))
			for i, st := range tc.statuses {
				a := gcAlloc(string(rune('a'+i)), "j", "n1", i, 0, structs.AllocDesiredRun, st)
				must(t, s.UpsertAllocs(uint64(3+i), []*structs.Allocation{a}))
			}
			must(t, s.UpsertPlacementFailure(10, &structs.PlacementFailure{JobID: "j", Unplaced: 1}))
			if tc.stop {
				must(t, s.StopJob(11, "j", 500))
				if got := s.Snapshot().JobByID("j").StopTime; got != 500 {
					t.Fatalf("stop time %d, want the entry's 500", got)
				}
			}
			mod := s.Snapshot().JobByID("j").ModifyIndex
			if tc.stale {
				mod--
			}
			res, err := s.GarbageCollect(20, &structs.GCRequest{Jobs: []structs.GCJob{{ID: "j", ModifyIndex: mod}}})
			must(t, err)
			snap := s.Snapshot()
			gone := snap.JobByID("j") == nil
			if gone != tc.gone {
				t.Fatalf("job gone %v, want %v (result %+v)", gone, tc.gone, res)
			}
			if !gone {
				if res != (GCResult{}) || len(snap.AllocsByJob("j")) != len(tc.statuses) {
					t.Fatalf("a kept job lost something: %+v", res)
				}
				return
			}
			if res != (GCResult{Jobs: 1, Allocs: len(tc.statuses)}) || len(snap.AllocsByJob("j")) != 0 ||
				snap.PlacementFailure("j") != nil || snap.TableIndex(TableJobs) != 20 {
				t.Fatalf("result %+v; allocs %d, failure %v, jobs index %d", res, len(snap.AllocsByJob("j")), snap.PlacementFailure("j"), snap.TableIndex(TableJobs))
			}
			checkConsistent(t, s, "after")
		})
	}
}

// TestNeededAllocs: what the scheduler still reads of a live job.
func TestNeededAllocs(t *testing.T) {
	const run = structs.AllocDesiredRun
	j := testJob("j") // count 2
	allocs := []*structs.Allocation{
		gcAlloc("old", "j", "n1", 0, 1, run, structs.AllocClientFailed),
		gcAlloc("head", "j", "n1", 0, 5, run, structs.AllocClientFailed),
		gcAlloc("live", "j", "n1", 1, 6, run, structs.AllocClientRunning),
		gcAlloc("prev", "j", "n1", 1, 2, run, structs.AllocClientFailed),
		gcAlloc("scaled", "j", "n1", 2, 7, run, structs.AllocClientFailed),
	}
	if got := NeededAllocs(j, allocs); len(got) != 1 || !got["head"] {
		t.Errorf("service: %v, want only the head of index 0", got)
	}
	b := testJob("b")
	b.Type = structs.JobTypeBatch
	done := gcAlloc("done", "b", "n1", 0, 3, run, structs.AllocClientComplete)
	later := gcAlloc("later", "b", "n1", 0, 4, structs.AllocDesiredStop, structs.AllocClientLost)
	if got := NeededAllocs(b, []*structs.Allocation{done, later}); len(got) != 2 || !got["done"] || !got["later"] {
		t.Errorf("batch: %v, want the completed copy and the head", got)
	}
	stopped := j.Copy()
	stopped.Stop = true
	if got := NeededAllocs(stopped, allocs); got != nil {
		t.Errorf("stopped job: %v, want nothing", got)
	}
}
