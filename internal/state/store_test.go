package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testNode(id, name string) *structs.Node {
	return &structs.Node{ID: id, Name: name, Status: structs.NodeStatusReady,
		Capacity: structs.Resources{CPU: 4000, MemoryMB: 8192}, Labels: map[string]string{"zone": "a"}}
}

func testJob(id string) *structs.Job {
	j := &structs.Job{Name: id, Count: 2, Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	j.Canonicalize()
	return j
}

func testAlloc(id, jobID, nodeID string, idx int) *structs.Allocation {
	return &structs.Allocation{ID: id, JobID: jobID, NodeID: nodeID, Index: idx, Name: structs.AllocName(jobID, idx),
		Resources: structs.Resources{CPU: 100, MemoryMB: 64}, DesiredStatus: structs.AllocDesiredRun,
		ClientStatus: structs.AllocClientPending}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNodeWrites(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertNode(10, testNode("n1", "one")))
	must(t, s.UpsertAllocs(11, []*structs.Allocation{
		testAlloc("a1", "j", "n1", 0), testAlloc("a2", "j", "n1", 1), testAlloc("a3", "j", "n2", 2),
	}))
	done := testAlloc("a4", "j", "n1", 3)
	done.ClientStatus = structs.AllocClientComplete
	must(t, s.UpsertAllocs(12, []*structs.Allocation{done}))
	must(t, s.UpdateNodeDrain(13, "n1", true, 5))

	// Re-registration keeps CreateIndex and the operator's drain flag.
	must(t, s.UpsertNode(14, testNode("n1", "one")))
	n := s.Snapshot().NodeByID("n1")
	if n.CreateIndex != 10 || n.ModifyIndex != 14 || !n.Drain {
		t.Fatalf("node after re-register: create %d modify %d drain %v", n.CreateIndex, n.ModifyIndex, n.Drain)
	}

	must(t, s.UpdateNodeStatus(15, "n1", structs.NodeStatusDown, 99))
	snap := s.Snapshot()
	if got := snap.NodeByID("n1"); got.Status != structs.NodeStatusDown || got.StatusUpdatedAt != 99 {
		t.Fatalf("node status %s at %d", got.Status, got.StatusUpdatedAt)
	}
	want := map[string]struct{ client, desired string }{
		"a1": {structs.AllocClientLost, structs.AllocDesiredStop},
		"a2": {structs.AllocClientLost, structs.AllocDesiredStop},
		"a3": {structs.AllocClientPending, structs.AllocDesiredRun},  // other node
		"a4": {structs.AllocClientComplete, structs.AllocDesiredRun}, // already finished
	}
	for id, w := range want {
		a := snap.AllocByID(id)
		if a.ClientStatus != w.client || a.DesiredStatus != w.desired {
			t.Errorf("%s: client %s desired %s, want %s %s", id, a.ClientStatus, a.DesiredStatus, w.client, w.desired)
		}
	}
	if got := snap.TableIndex(TableAllocs); got != 15 {
		t.Errorf("allocs index %d, want 15", got)
	}
	if err := s.UpdateNodeStatus(16, "nope", structs.NodeStatusDown, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown node: err %v, want ErrNotFound", err)
	}
}

func TestJobWrites(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(5, testJob("web")))
	must(t, s.UpsertJob(6, testJob("web")))
	must(t, s.UpsertAllocs(7, []*structs.Allocation{testAlloc("a1", "web", "n1", 0), testAlloc("a2", "web", "n1", 1)}))
	must(t, s.UpsertPlacementFailure(8, &structs.PlacementFailure{JobID: "web", Unplaced: 1}))

	j := s.Snapshot().JobByID("web")
	if j.CreateIndex != 5 || j.ModifyIndex != 6 {
		t.Fatalf("job indexes %d/%d, want 5/6", j.CreateIndex, j.ModifyIndex)
	}
	must(t, s.StopJob(9, "web", 42))
	snap := s.Snapshot()
	if j := snap.JobByID("web"); !j.Stop || j.Status != structs.JobStatusDead {
		t.Fatalf("stopped job: stop %v status %s", j.Stop, j.Status)
	}
	for _, a := range snap.AllocsByJob("web") {
		if a.DesiredStatus != structs.AllocDesiredStop || a.ModifyTime != 42 {
			t.Errorf("%s after stop: desired %s time %d", a.ID, a.DesiredStatus, a.ModifyTime)
		}
	}
	if err := s.StopJob(10, "nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("stop unknown job: %v", err)
	}
	must(t, s.PurgeJob(11, "web"))
	snap = s.Snapshot()
	if snap.JobByID("web") != nil || len(snap.AllocsByJob("web")) != 0 || snap.PlacementFailure("web") != nil {
		t.Fatal("purge left something behind")
	}
	must(t, s.PurgeJob(12, "web")) // replay is harmless
}

func TestUpsertAllocsKeepsClientFields(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertAllocs(1, []*structs.Allocation{testAlloc("a1", "j", "n1", 0)}))
	_, err := s.UpdateAllocsFromClient(2, "n1", []*structs.AllocClientUpdate{{ID: "a1", ClientStatus: structs.AllocClientRunning}}, 7)
	must(t, err)
	// A plan's stop, built from an older read, must not undo the report.
	stop := testAlloc("a1", "j", "n1", 0)
	stop.DesiredStatus = structs.AllocDesiredStop
	stop.DesiredDescription = "scaled down"
	stop.ModifyTime = 8
	must(t, s.UpsertAllocs(3, []*structs.Allocation{stop}))
	a := s.Snapshot().AllocByID("a1")
	if a.ClientStatus != structs.AllocClientRunning || a.DesiredStatus != structs.AllocDesiredStop ||
		a.CreateIndex != 1 || a.ModifyIndex != 3 || a.DesiredDescription != "scaled down" {
		t.Fatalf("merged alloc: %+v", a)
	}
}

func TestUpdateAllocsFromClient(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertAllocs(1, []*structs.Allocation{testAlloc("a1", "j", "n1", 0), testAlloc("a2", "j", "n1", 1)}))
	events := make([]structs.TaskEvent, 15)
	for i := range events {
		events[i] = structs.TaskEvent{Time: int64(i), Type: "Started"}
	}
	tests := []struct {
		name         string
		node         string
		update       structs.AllocClientUpdate
		wantStatus   string
		wantTerminal int
		wantIndex    uint64
	}{
		{"running", "n1", structs.AllocClientUpdate{ID: "a1", ClientStatus: "running", TaskState: structs.TaskState{Events: events}}, "running", 0, 2},
		{"unknown alloc ignored", "n1", structs.AllocClientUpdate{ID: "zz", ClientStatus: "failed"}, "running", 0, 2},
		{"other node ignored", "n9", structs.AllocClientUpdate{ID: "a1", ClientStatus: "failed"}, "running", 0, 2},
		{"failed is terminal", "n1", structs.AllocClientUpdate{ID: "a1", ClientStatus: "failed"}, "failed", 1, 5},
		{"failed again is not new", "n1", structs.AllocClientUpdate{ID: "a1", ClientStatus: "failed"}, "failed", 0, 6},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.update
			term, err := s.UpdateAllocsFromClient(uint64(i+2), tc.node, []*structs.AllocClientUpdate{&u}, 1)
			must(t, err)
			a := s.Snapshot().AllocByID("a1")
			if a.ClientStatus != tc.wantStatus || len(term) != tc.wantTerminal {
				t.Fatalf("status %s terminal %d, want %s %d", a.ClientStatus, len(term), tc.wantStatus, tc.wantTerminal)
			}
			if got := s.Snapshot().TableIndex(TableAllocs); got != tc.wantIndex {
				t.Fatalf("allocs index %d, want %d", got, tc.wantIndex)
			}
			if len(a.TaskState.Events) > structs.MaxTaskEvents {
				t.Fatalf("%d events kept, max %d", len(a.TaskState.Events), structs.MaxTaskEvents)
			}
		})
	}
}

func TestApplyPlan(t *testing.T) {
	s := newStore(t)
	must(t, s.ApplyPlan(3, &structs.ApplyPlanRequest{JobID: "j", Allocs: []*structs.Allocation{testAlloc("a1", "j", "n1", 0)},
		Failure: &structs.PlacementFailure{Unplaced: 1, Message: "no room"}}))
	snap := s.Snapshot()
	if f := snap.PlacementFailure("j"); f == nil || f.JobID != "j" || f.Unplaced != 1 {
		t.Fatalf("failure %+v", f)
	}
	if len(snap.AllocsByJob("j")) != 1 || snap.Index() != 3 {
		t.Fatalf("allocs %d index %d", len(snap.AllocsByJob("j")), snap.Index())
	}
	must(t, s.ApplyPlan(4, &structs.ApplyPlanRequest{JobID: "j", ClearFailure: true}))
	if s.Snapshot().PlacementFailure("j") != nil {
		t.Fatal("failure not cleared")
	}
}

func TestLookups(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertNode(1, testNode("abc123", "alpha")))
	must(t, s.UpsertNode(2, testNode("abd456", "beta")))
	must(t, s.UpsertNode(3, testNode("ffff", "twin")))
	must(t, s.UpsertNode(4, testNode("eeee", "twin")))
	must(t, s.UpsertAllocs(5, []*structs.Allocation{testAlloc("11aa", "j", "abc123", 0), testAlloc("11ab", "j", "abc123", 1)}))
	tests := []struct {
		ref    string
		want   string
		errIs  error
		alloc  bool
		errHas string
	}{
		{ref: "abc123", want: "abc123"},
		{ref: "abc", want: "abc123"},
		{ref: "ab", errIs: ErrAmbiguous, errHas: "abc123, abd456"},
		{ref: "beta", want: "abd456"},
		{ref: "twin", errIs: ErrAmbiguous, errHas: "several nodes"},
		{ref: "zzz", errIs: ErrNotFound},
		{ref: "", errIs: ErrNotFound},
		{ref: "11aa", want: "11aa", alloc: true},
		{ref: "11a", errIs: ErrAmbiguous, alloc: true},
		{ref: "22", errIs: ErrNotFound, alloc: true},
	}
	snap := s.Snapshot()
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/alloc=%v", tc.ref, tc.alloc), func(t *testing.T) {
			var id string
			var err error
			if tc.alloc {
				var a *structs.Allocation
				if a, err = snap.AllocByPrefix(nil, tc.ref); a != nil {
					id = a.ID
				}
			} else {
				var n *structs.Node
				if n, err = snap.NodeByPrefix(nil, tc.ref); n != nil {
					id = n.ID
				}
			}
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) || !bytes.Contains([]byte(err.Error()), []byte(tc.errHas)) {
					t.Fatalf("err %v, want %v containing %q", err, tc.errIs, tc.errHas)
				}
				return
			}
			if err != nil || id != tc.want {
				t.Fatalf("got %q, %v; want %q", id, err, tc.want)
			}
		})
	}
}

func TestJobStatus(t *testing.T) {
	batch := testJob("b")
	batch.Type = structs.JobTypeBatch
	svc := testJob("s")
	stopped := testJob("x")
	stopped.Stop = true
	complete := func(idx int) *structs.Allocation {
		a := testAlloc(fmt.Sprint("c", idx), "b", "n", idx)
		a.ClientStatus = structs.AllocClientComplete
		return a
	}
	running := testAlloc("r", "s", "n", 0)
	running.ClientStatus = structs.AllocClientRunning
	tests := []struct {
		name   string
		job    *structs.Job
		allocs []*structs.Allocation
		want   structs.JobStatus
	}{
		{"stopped", stopped, []*structs.Allocation{running}, structs.JobStatusDead},
		{"batch all complete", batch, []*structs.Allocation{complete(0), complete(1)}, structs.JobStatusDead},
		{"batch half complete", batch, []*structs.Allocation{complete(0), running}, structs.JobStatusRunning},
		{"batch nothing yet", batch, nil, structs.JobStatusPending},
		{"service running", svc, []*structs.Allocation{running}, structs.JobStatusRunning},
		{"service pending", svc, []*structs.Allocation{testAlloc("p", "s", "n", 0)}, structs.JobStatusPending},
	}
	for _, tc := range tests {
		if got := JobStatus(tc.job, tc.allocs); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBlockingQuery(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(5, testJob("web")))
	read := func(ws memdb.WatchSet, snap *Snapshot) (uint64, error) {
		snap.JobsWatch(ws)
		return snap.TableIndex(TableJobs), nil
	}
	ctx := context.Background()

	// Index already past minIndex: answers at once.
	if idx, err := s.BlockingQuery(ctx, 4, time.Minute, read); err != nil || idx != 5 {
		t.Fatalf("idx %d err %v", idx, err)
	}

	// Waits until a write changes the table.
	done := make(chan uint64)
	go func() {
		idx, _ := s.BlockingQuery(ctx, 5, time.Minute, read)
		done <- idx
	}()
	// An unrelated table does not wake the query.
	must(t, s.UpsertNode(6, testNode("n1", "one")))
	must(t, s.UpsertJob(7, testJob("api")))
	if idx := <-done; idx != 7 {
		t.Fatalf("woke with index %d, want 7", idx)
	}

	// Restore wakes waiting queries too.
	go func() {
		idx, _ := s.BlockingQuery(ctx, 7, time.Minute, read)
		done <- idx
	}()
	var buf bytes.Buffer
	s2 := newStore(t)
	must(t, s2.UpsertJob(9, testJob("other")))
	must(t, s2.Snapshot().Persist(&buf))
	must(t, s.Restore(&buf))
	if idx := <-done; idx != 9 {
		t.Fatalf("woke with index %d after restore, want 9", idx)
	}

	// Context cancellation ends the wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.BlockingQuery(cctx, 100, time.Minute, read); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	// The wait time ends the wait with the current index.
	if idx, err := s.BlockingQuery(ctx, 100, time.Millisecond, read); err != nil || idx != 9 {
		t.Fatalf("timeout: idx %d err %v", idx, err)
	}
}

func TestPersistRestoreRoundTrip(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertNode(1, testNode("n1", "one")))
	must(t, s.UpsertNode(2, testNode("n2", "two")))
	must(t, s.UpsertJob(3, testJob("web")))
	must(t, s.UpsertAllocs(4, []*structs.Allocation{testAlloc("a1", "web", "n1", 0), testAlloc("a2", "web", "n2", 1)}))
	must(t, s.UpsertPlacementFailure(5, &structs.PlacementFailure{JobID: "web", Unplaced: 1, NodesExhausted: map[string]int{"cpu": 2}}))
	must(t, s.UpdateNodeStatus(6, "n2", structs.NodeStatusDown, 77))

	var buf bytes.Buffer
	must(t, s.Snapshot().Persist(&buf))
	r := newStore(t)
	must(t, r.Restore(bytes.NewReader(buf.Bytes())))
	if a, b := dump(t, s), dump(t, r); a != b {
		t.Fatalf("restored state differs:\n%s\n---\n%s", a, b)
	}

	// A corrupt stream leaves the store unchanged.
	before := dump(t, r)
	if err := r.Restore(bytes.NewReader([]byte(`{"node":{"id":"x"}}` + "\n{bad"))); err == nil {
		t.Fatal("corrupt stream restored without error")
	}
	if dump(t, r) != before {
		t.Fatal("failed restore changed the store")
	}
}

// dump renders the whole store as JSON for comparisons.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	snap := s.Snapshot()
	b, err := json.Marshal(map[string]any{
		"nodes": snap.Nodes(), "jobs": snap.Jobs(), "allocs": snap.Allocs(),
		"failures": snap.PlacementFailures(), "index": snap.Index(),
		"idx": []uint64{snap.TableIndex(TableNodes), snap.TableIndex(TableJobs), snap.TableIndex(TableAllocs), snap.TableIndex(TablePlacementFailures)},
	})
	must(t, err)
	return string(b)
}

func TestUpsertAllocsSharesJobs(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(1, testJob("web")))
	stored := s.Snapshot().JobByID("web")
	must(t, s.UpsertNode(2, testNode("n1", "one")))
	must(t, s.UpsertNode(3, testNode("n2", "two")))
	must(t, s.UpdateNodeStatus(4, "n2", structs.NodeStatusDown, 0))

	withJob := func(id string, j *structs.Job, node string) *structs.Allocation {
		a := testAlloc(id, "web", node, 0)
		a.Job, a.JobVersion = j, j.Version
		return a
	}
	decoded := stored.Copy() // as decoded from a Raft entry: equal, not the same
	older := stored.Copy()
	older.Version = 0
	a4 := withJob("a4", stored, "n1")
	a4.Job = nil // left out by the plan applier
	must(t, s.UpsertAllocs(5, []*structs.Allocation{
		withJob("a1", decoded, "n1"), withJob("a2", older, "n1"), withJob("a3", older.Copy(), "n1"), a4,
		withJob("a5", stored, "n2"),
	}))
	snap := s.Snapshot()
	if snap.AllocByID("a1").Job != stored || snap.AllocByID("a4").Job != stored {
		t.Error("allocations of the stored version do not share the stored job")
	}
	if a2, a3 := snap.AllocByID("a2").Job, snap.AllocByID("a3").Job; a2 != a3 || a2.Version != 0 {
		t.Error("allocations of an older version do not share one copy")
	}
	// A placement on a node that went down meanwhile is lost at once.
	if a := snap.AllocByID("a5"); a.ClientStatus != structs.AllocClientLost || a.DesiredStatus != structs.AllocDesiredStop {
		t.Errorf("alloc placed on a down node: client %s desired %s", a.ClientStatus, a.DesiredStatus)
	}

	// Restore shares jobs the same way.
	var buf bytes.Buffer
	must(t, snap.Persist(&buf))
	r := newStore(t)
	must(t, r.Restore(&buf))
	rs := r.Snapshot()
	if rs.AllocByID("a1").Job != rs.JobByID("web") || rs.AllocByID("a2").Job != rs.AllocByID("a3").Job {
		t.Error("restored allocations do not share jobs")
	}
}

// A node's agent watching its allocations wakes for changes on its node
// only.
func TestWatchIsPerNode(t *testing.T) {
	s := newStore(t)
	// Both nodes already hold allocations: the first insert under a new
	// value splits the radix tree and fires every watch on the split node,
	// which is memdb's granularity, not a per-node leak.
	must(t, s.UpsertAllocs(1, []*structs.Allocation{testAlloc("a1", "j", "n1", 0), testAlloc("b0", "j", "n2", 3)}))
	ws := memdb.NewWatchSet()
	s.Snapshot().AllocsByNodeWatch(ws, "n1")

	must(t, s.UpsertAllocs(2, []*structs.Allocation{testAlloc("b1", "j", "n2", 1)}))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ws.WatchCtx(canceled); err == nil {
		t.Fatal("a write on n2 woke the watch of n1")
	}
	must(t, s.UpsertAllocs(3, []*structs.Allocation{testAlloc("a2", "j", "n1", 2)}))
	if err := ws.WatchCtx(context.Background()); err != nil {
		t.Fatalf("a write on n1 did not wake its watch: %v", err)
	}
}
