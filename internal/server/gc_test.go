package server

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

var gcNow = time.Unix(1_800_000_000, 0)

// gcFixture builds state through the FSM, in order: each call is one
// entry at the next index.
type gcFixture struct {
	t     *testing.T
	f     *fsm
	index uint64
}

func newGCFixture(t *testing.T) *gcFixture {
	fx := &gcFixture{t: t, f: newTestFSM(t)}
	fx.apply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: &structs.Node{ID: "n1", Name: "one",
		Capacity: structs.Resources{CPU: 100000, MemoryMB: 100000}}, Time: gcNow.UnixNano()})
	return fx
}

func (fx *gcFixture) apply(mt structs.MessageType, req any) any {
	fx.t.Helper()
	fx.index++
	resp := fx.f.Apply(entry(fx.t, fx.index, mt, req))
	if err, ok := resp.(error); ok {
		fx.t.Fatalf("%s at %d: %v", mt, fx.index, err)
	}
	return resp
}

func (fx *gcFixture) job(name string, typ structs.JobType, count int) *structs.Job {
	j := &structs.Job{Name: name, Type: typ, Count: count, Driver: "mock", Resources: structs.Resources{CPU: 10, MemoryMB: 10}, Version: 1}
	j.Canonicalize()
	fx.apply(structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: j})
	return j
}

// alloc places an allocation of job at idx at time at, then reports
// client status (if not pending) at the same time.
func (fx *gcFixture) alloc(id, job string, idx int, at time.Time, client string) {
	fx.t.Helper()
	fx.apply(structs.ApplyPlanRequestType, &structs.ApplyPlanRequest{JobID: job, Time: at.UnixNano(), Allocs: []*structs.Allocation{{
		ID: id, JobID: job, Name: structs.AllocName(job, idx), Index: idx, NodeID: "n1", JobVersion: 1,
		Resources: structs.Resources{CPU: 10, MemoryMB: 10}, DesiredStatus: structs.AllocDesiredRun,
		ClientStatus: structs.AllocClientPending, CreateTime: at.UnixNano(), ModifyTime: at.UnixNano()}}})
	if client != structs.AllocClientPending {
		fx.report(id, client, at)
	}
}

func (fx *gcFixture) report(id, client string, at time.Time) {
	fx.apply(structs.AllocClientUpdateBatchRequestType, &structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{
		{NodeID: "n1", Time: at.UnixNano(), Updates: []*structs.AllocClientUpdate{{ID: id, ClientStatus: client}}}}})
}

// names lists the chosen items: allocation IDs, and "job:ID" for jobs.
func names(items []gcItem) []string {
	var out []string
	for _, it := range items {
		if it.allocID == "" {
			out = append(out, "job:"+it.job.ID)
		} else {
			out = append(out, it.allocID)
		}
	}
	return out
}

// TestChooseGarbage: what one collection deletes, by age, by count per
// job, forced, for finished jobs and for allocations left without a job;
// never what the scheduler still reads or what still runs.
func TestChooseGarbage(t *testing.T) {
	const (
		failed, complete, running = structs.AllocClientFailed, structs.AllocClientComplete, structs.AllocClientRunning
		hour                      = time.Hour
	)
	fx := newGCFixture(t)
	// web: a live service whose copy 0 failed five times; copy 1 runs.
	fx.job("web", structs.JobTypeService, 2)
	for i, ago := range []time.Duration{5 * hour, 4 * hour, 30 * time.Minute, 20 * time.Minute, 10 * time.Minute} {
		fx.alloc(fmt.Sprintf("web-f%d", i), "web", 0, gcNow.Add(-ago), failed)
	}
	fx.alloc("web-live", "web", 1, gcNow.Add(-5*hour), running)
	// old: stopped three hours ago; its copy completed then.
	fx.job("old", structs.JobTypeService, 1)
	fx.alloc("old-a", "old", 0, gcNow.Add(-3*hour), running)
	fx.apply(structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "old", Time: gcNow.Add(-3 * hour).UnixNano()})
	fx.report("old-a", complete, gcNow.Add(-3*hour))
	// ancient: stopped five hours ago, without allocations.
	fx.job("ancient", structs.JobTypeService, 0)
	fx.apply(structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "ancient", Time: gcNow.Add(-5 * hour).UnixNano()})
	// busy: stopped, its task still running: the job stays.
	fx.job("busy", structs.JobTypeService, 1)
	fx.alloc("busy-a", "busy", 0, gcNow.Add(-5*hour), running)
	fx.apply(structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "busy", Time: gcNow.Add(-5 * hour).UnixNano()})
	// report: a batch job done five hours ago, after one failure.
	fx.job("report", structs.JobTypeBatch, 1)
	fx.alloc("report-f", "report", 0, gcNow.Add(-6*hour), failed)
	fx.alloc("report-ok", "report", 0, gcNow.Add(-5*hour), complete)
	// nightly: a batch job still running: its completed copy stays.
	fx.job("nightly", structs.JobTypeBatch, 2)
	fx.alloc("nightly-done", "nightly", 0, gcNow.Add(-5*hour), complete)
	fx.alloc("nightly-run", "nightly", 1, gcNow.Add(-5*hour), running)
	// lost: allocations whose job record is gone (an older build's state).
	fx.job("lost", structs.JobTypeService, 1)
	fx.alloc("lost-a", "lost", 0, gcNow.Add(-2*hour), failed)
	fx.alloc("lost-b", "lost", 0, gcNow.Add(-time.Minute), running)
	snap := fx.f.state.Snapshot()
	lost := &orphanView{Snapshot: snap, hide: "lost"}

	tests := []struct {
		name string
		pol  gcPolicy
		want []string
	}{
		{"defaults", DefaultConfig().gcPolicy(false), []string{
			"job:ancient",            // finished 5h ago, over the 4h threshold
			"old-a",                  // old: stopped 3h ago, its copy done for over an hour
			"report-f", "job:report", // finished 5h ago; its entry deletes report-ok with it
			"web-f0", "web-f1", // failed over an hour ago, and not the head
			"lost-a", // over an hour old; lost-b runs
		}},
		{"count limit", gcPolicy{allocAge: 24 * hour, jobAge: 24 * hour, keepPerJob: 2}, []string{
			"web-f0", "web-f1", // the two newest, web-f2 and web-f3, are kept besides the head
		}},
		{"keep none", gcPolicy{allocAge: 24 * hour, jobAge: 24 * hour, keepPerJob: 0}, []string{
			"old-a",
			"report-f",
			"web-f0", "web-f1", "web-f2", "web-f3",
			"lost-a",
		}},
		{"forced", gcPolicy{allocAge: 24 * hour, jobAge: 24 * hour, keepPerJob: 20, force: true}, []string{
			"job:ancient",
			"old-a", "job:old",
			"report-f", "job:report",
			"web-f0", "web-f1", "web-f2", "web-f3",
			"lost-a",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(chooseGarbage(lost, gcNow, tc.pol)); !slices.Equal(got, tc.want) {
				t.Fatalf("chose %v\nwant %v", got, tc.want)
			}
		})
	}
}

// orphanView hides one job's record, as if it were gone but its
// allocations were not.
type orphanView struct {
	*state.Snapshot
	hide string
}

func (v *orphanView) Jobs() []*structs.Job {
	return slices.DeleteFunc(v.Snapshot.Jobs(), func(j *structs.Job) bool { return j.ID == v.hide })
}

func (v *orphanView) JobByID(id string) *structs.Job {
	if id == v.hide {
		return nil
	}
	return v.Snapshot.JobByID(id)
}

// TestGCEntries: a collection is split into entries of at most the batch
// size, in order, so a job's deletion comes after its allocations'; the
// allocations of one job in an entry share its index.
func TestGCEntries(t *testing.T) {
	j := structs.GCJob{ID: "j", ModifyIndex: 4}
	k := structs.GCJob{ID: "k", ModifyIndex: 9}
	var items []gcItem
	for i := range 2 {
		items = append(items, gcItem{allocID: fmt.Sprint("k", i), job: k})
	}
	for i := range 5 {
		items = append(items, gcItem{allocID: fmt.Sprint("j", i), job: j})
	}
	items = append(items, gcItem{job: j})
	reqs := gcEntries(items, 3, 42)
	var got []string
	for _, r := range reqs {
		n := len(r.Jobs)
		for _, g := range r.Allocs {
			n += len(g.IDs)
		}
		if n > 3 || r.Time != 42 {
			t.Fatalf("entry %+v: over the batch size or without the time", r)
		}
		got = append(got, fmt.Sprint(r.Allocs, r.Jobs))
	}
	want := []string{
		"[{k 9 [k0 k1]} {j 4 [j0]}] []",
		"[{j 4 [j1 j2 j3]}] []",
		"[{j 4 [j4]}] [{j 4}]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if gcEntries(nil, 3, 1) != nil {
		t.Fatal("entries for nothing to collect")
	}
}

// TestCrashLoopStaysBounded drives a crash-looping service (every copy
// fails as soon as it is placed) through the scheduler's reconciler, the
// plan check and the FSM in virtual time, with the default policies and
// garbage collection settings: the waits between replacements double from
// 30s up to the 1h cap, the reschedule chain is never lost to collection,
// and the job's terminal allocations stay bounded however many copies
// failed.
func TestCrashLoopStaysBounded(t *testing.T) {
	fx := newGCFixture(t)
	job := fx.job("web", structs.JobTypeService, 2)
	cfg := DefaultConfig()
	pol := cfg.gcPolicy(false)
	clock := gcNow
	opts := scheduler.Options{Rand: rand.New(rand.NewPCG(1, 2)), Now: func() time.Time { return clock }}
	nextGC := clock.Add(cfg.GCInterval)
	bound := job.Count + cfg.GCMaxTerminalAllocsPerJob
	failures, collected, peak := 0, 0, 0
	var failedAt time.Time
	var waits []time.Duration // index 0: from a failure to the next placement
	for failures < 1000 {
		snap := fx.f.state.Snapshot()
		res, err := scheduler.ComputePlan(opts, snap, "web")
		if err != nil {
			t.Fatal(err)
		}
		if _, req := evaluatePlan(snap, res.Plan, clock.UnixNano()); req != nil {
			fx.apply(structs.ApplyPlanRequestType, req)
		}
		// Every live copy crashes at once.
		var crashed []*structs.AllocClientUpdate
		for _, a := range fx.f.state.Snapshot().AllocsByJob("web") {
			if a.Terminal() {
				continue
			}
			if a.Index == 0 {
				if !failedAt.IsZero() {
					waits = append(waits, clock.Sub(failedAt))
				}
				failedAt = clock
			}
			crashed = append(crashed, &structs.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientFailed})
		}
		if len(crashed) > 0 {
			fx.apply(structs.AllocClientUpdateBatchRequestType, &structs.AllocClientUpdateBatchRequest{
				Nodes: []structs.AllocClientUpdateRequest{{NodeID: "n1", Time: clock.UnixNano(), Updates: crashed}}})
			failures += len(crashed)
			continue // the next pass sees the failures and sets the wait
		}
		if res.RetryAt.IsZero() {
			t.Fatalf("after %d failures nothing runs and no replacement waits", failures)
		}
		// Jump to the next event: a replacement due, or a collection.
		clock = res.RetryAt
		if !nextGC.After(clock) {
			clock = nextGC
			for _, req := range gcEntries(chooseGarbage(fx.f.state.Snapshot(), clock, pol), cfg.GCBatchSize, clock.UnixNano()) {
				collected += fx.apply(structs.GCRequestType, req).(*state.GCResult).Allocs
			}
			nextGC = clock.Add(cfg.GCInterval)
			terminal := 0
			for _, a := range fx.f.state.Snapshot().AllocsByJob("web") {
				if a.Terminal() {
					terminal++
				}
			}
			if terminal > bound {
				t.Fatalf("after %d failures and a collection, %d terminal allocations are kept, want at most %d", failures, terminal, bound)
			}
			peak = max(peak, terminal)
		}
	}
	for i, w := range waits {
		if want := min(30*time.Second<<min(i, 20), time.Hour); w != want {
			t.Fatalf("wait %d before replacing copy 0: %v, want %v (waits %v)", i+1, w, want, waits[:i+1])
		}
	}
	// The chain survived collection: the head of index 0 counts every
	// replacement so far.
	var head *structs.Allocation
	for _, a := range fx.f.state.Snapshot().AllocsByJob("web") {
		if a.Index == 0 && (head == nil || a.CreateIndex > head.CreateIndex) {
			head = a
		}
	}
	if head.RescheduleCount != len(waits) {
		t.Fatalf("copy 0's chain counts %d reschedules, %d happened", head.RescheduleCount, len(waits))
	}
	if collected < failures-bound {
		t.Fatalf("%d of %d failed allocations collected", collected, failures)
	}
	t.Logf("%d failures over %s of virtual time; %d allocations collected; at most %d terminal kept after a collection",
		failures, clock.Sub(gcNow).Round(time.Hour), collected, peak)
}

// TestFSMAppliesGC: a GC entry goes through the FSM's JSON path; the
// allocations of a job that changed since the choice, of another job or
// still running are kept; the result says what was deleted.
func TestFSMAppliesGC(t *testing.T) {
	fx := newGCFixture(t)
	fx.job("web", structs.JobTypeService, 1)
	fx.alloc("a", "web", 0, gcNow, structs.AllocClientFailed)
	fx.alloc("b", "web", 0, gcNow, structs.AllocClientFailed)
	fx.alloc("c", "web", 0, gcNow, structs.AllocClientRunning)
	mod := fx.f.state.Snapshot().JobByID("web").ModifyIndex
	resp := fx.f.Apply(entry(t, 100, structs.GCRequestType, &structs.GCRequest{Time: gcNow.UnixNano(), Allocs: []structs.GCAllocs{
		{JobID: "web", ModifyIndex: mod - 1, IDs: []string{"b"}}, // chosen before the job changed: kept
		{JobID: "web", ModifyIndex: mod, IDs: []string{"a", "c"}},
		{JobID: "gone", IDs: []string{"b"}}, // not that job's
	}}))
	if r, ok := resp.(*state.GCResult); !ok || *r != (state.GCResult{Allocs: 1}) {
		t.Fatalf("response %#v, want 1 allocation deleted", resp)
	}
	if ids := fx.f.state.Snapshot().AllocsByJob("web"); len(ids) != 2 || ids[0].ID != "b" {
		t.Fatalf("left %v, want b and c", ids)
	}
	if got := fx.f.state.Snapshot().TableIndex(state.TableAllocs); got != 100 {
		t.Fatalf("allocs index %d", got)
	}
	var bad raft.Log
	bad.Index, bad.Type, bad.Data = 101, raft.LogCommand, []byte{byte(structs.GCRequestType), '{'}
	if _, ok := fx.f.Apply(&bad).(error); !ok {
		t.Fatal("a damaged GC entry was applied")
	}
}

// TestFinishedBatchJobNeverLooksUnrun: a finished batch job collected in
// entries of one ID each keeps its completed copies until the entry that
// deletes the job itself, so the scheduler, reconciling it between two
// entries, never sees an index without its completed copy and runs it
// again.
func TestFinishedBatchJobNeverLooksUnrun(t *testing.T) {
	fx := newGCFixture(t)
	fx.job("report", structs.JobTypeBatch, 2)
	fx.alloc("f0", "report", 0, gcNow.Add(-6*time.Hour), structs.AllocClientFailed)
	fx.alloc("ok0", "report", 0, gcNow.Add(-5*time.Hour), structs.AllocClientComplete)
	fx.alloc("ok1", "report", 1, gcNow.Add(-5*time.Hour), structs.AllocClientComplete)
	opts := scheduler.Options{Rand: rand.New(rand.NewPCG(1, 2)), Now: func() time.Time { return gcNow }}
	reqs := gcEntries(chooseGarbage(fx.f.state.Snapshot(), gcNow, DefaultConfig().gcPolicy(true)), 1, gcNow.UnixNano())
	if len(reqs) != 2 {
		t.Fatalf("%d entries, want 2 (f0, then the job with ok0 and ok1)", len(reqs))
	}
	for i, req := range reqs {
		res, err := scheduler.ComputePlan(opts, fx.f.state.Snapshot(), "report")
		if err != nil || len(res.Plan.Placements) != 0 {
			t.Fatalf("before entry %d the scheduler places %d copies (%v)", i, len(res.Plan.Placements), err)
		}
		fx.apply(structs.GCRequestType, req)
	}
	snap := fx.f.state.Snapshot()
	if snap.JobByID("report") != nil || len(snap.AllocsByJob("report")) != 0 {
		t.Fatalf("left the job %v and %d allocations", snap.JobByID("report"), len(snap.AllocsByJob("report")))
	}
}
