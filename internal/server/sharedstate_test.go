package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/sharedstate"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

func registerNodes(t *testing.T, c *api.Client, n int, cpu int64) {
	t.Helper()
	for i := range n {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%d", i), cpu, 64*1024)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkNoOverCommit fails if any node's live allocations exceed it.
func checkNoOverCommit(t *testing.T, s *Server) {
	t.Helper()
	snap := s.State().Snapshot()
	for _, n := range snap.Nodes() {
		var used structs.Resources
		for _, a := range snap.AllocsByNode(n.ID) {
			if !a.Terminal() {
				used = used.Add(a.Resources)
			}
		}
		if ok, dim := n.Capacity.Fits(used); !ok {
			t.Fatalf("node %s over-committed on %s: %s used of %s", n.ID, dim, used, n.Capacity)
		}
	}
}

// TestPlanBatchChecksEachAgainstEarlier: plans committed in one entry are
// each checked against the state the earlier ones leave: the second plan's
// part on the node the first filled is rejected, its other part commits,
// and both answers carry the index of the one entry. A plan whose
// submitter gave up is not checked.
func TestPlanBatchChecksEachAgainstEarlier(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	registerNodes(t, c, 2, 4000)
	for _, j := range []string{"a", "b"} {
		if _, err := c.RegisterJob(bg, mockJob(j, 0)); err != nil {
			t.Fatal(err)
		}
	}
	alloc := func(id, job, node string, cpu int64) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: job, Name: id, NodeID: node, Resources: structs.Resources{CPU: cpu, MemoryMB: 10}}
	}
	planA := &structs.Plan{JobID: "a", Placements: []*structs.Allocation{alloc("a-1", "a", "n0", 3000)}}
	planB := &structs.Plan{JobID: "b", Placements: []*structs.Allocation{alloc("b-1", "b", "n0", 2000), alloc("b-2", "b", "n1", 2000)}}
	planC := &structs.Plan{JobID: "a", Placements: []*structs.Allocation{alloc("a-2", "a", "n1", 100)}}
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	before := s.State().Snapshot().Index()

	// Hold the committer back so both plans queue for one entry.
	s.plans.mu.Lock()
	s.plans.committing = true
	s.plans.mu.Unlock()
	_, ca, errA := s.plans.submit(bg, planA)
	_, cc, errC := s.plans.submit(cancelled, planC)
	_, cb, errB := s.plans.submit(bg, planB)
	if errA != nil || errB != nil || ca == nil || cb == nil {
		t.Fatalf("submit: %v, %v", errA, errB)
	}
	if errC == nil || cc != nil {
		t.Fatal("a plan whose submitter gave up was queued")
	}
	s.wg.Add(1)
	go s.plans.commitLoop()
	ra, errA := ca.wait()
	rb, errB := cb.wait()
	if errA != nil || errB != nil {
		t.Fatalf("errors %v, %v", errA, errB)
	}
	if !slices.Equal(ra.Placed, []string{"a-1"}) || len(ra.RejectedNodes) != 0 {
		t.Fatalf("a: %+v", ra)
	}
	if !slices.Equal(rb.Placed, []string{"b-2"}) || !slices.Equal(rb.RejectedNodes, []string{"n0"}) {
		t.Fatalf("b: %+v, want b-2 placed and n0 rejected", rb)
	}
	if ra.Index != rb.Index || rb.RefreshIndex != rb.Index || ra.Index <= before {
		t.Fatalf("indexes a=%d b=%d refresh=%d before=%d: want one new entry for both", ra.Index, rb.Index, rb.RefreshIndex, before)
	}
	snap := s.State().Snapshot()
	for id, want := range map[string]bool{"a-1": true, "b-1": false, "b-2": true, "a-2": false} {
		a := snap.AllocByID(id)
		if (a != nil) != want {
			t.Fatalf("allocation %s stored: %v, want %v", id, a != nil, want)
		}
		if a != nil && a.CreateIndex != ra.Index {
			t.Fatalf("allocation %s at index %d, want %d", id, a.CreateIndex, ra.Index)
		}
	}
	checkNoOverCommit(t, s)
}

// TestConcurrentPlansNeverOverCommit: 16 goroutines submit plans for one
// node at once; the batches commit exactly what fits.
func TestConcurrentPlansNeverOverCommit(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	registerNodes(t, c, 1, 4000)
	if _, err := c.RegisterJob(bg, mockJob("a", 0)); err != nil {
		t.Fatal(err)
	}
	// The scheduler reconciles "a" (count 0) once after the registration;
	// let it, so it does not stop the copies placed below meanwhile.
	waitFor(t, 10*time.Second, "the scheduler to see job a", func() (bool, string) {
		st := s.sched.Status()
		return st.Evaluations >= 1 && st.QueueDepth == 0, fmt.Sprintf("%+v", st)
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed := 0
	for i := range 16 {
		wg.Go(func() {
			id := fmt.Sprintf("a-%d", i)
			res, err := s.SubmitPlan(bg, &structs.Plan{JobID: "a", Placements: []*structs.Allocation{
				{ID: id, JobID: "a", Name: id, NodeID: "n0", Resources: structs.Resources{CPU: 1000, MemoryMB: 10}}}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			placed += len(res.Placed)
			mu.Unlock()
		})
	}
	wg.Wait()
	if placed != 4 {
		t.Fatalf("%d placed, want 4 (4000m / 1000m)", placed)
	}
	checkNoOverCommit(t, s)
}

// TestSharedStateServer runs the server with --scheduler shared-state and
// a service and a batch scheduler, end to end through the API.
func TestSharedStateServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.Scheduler.Architecture = architecture.SharedState
	cfg.Scheduler.SharedState.Workers, cfg.Scheduler.SharedState.BatchWorkers = 3, 2
	s, c := startServer(t, cfg)
	registerNodes(t, c, 4, 4000)
	jobs := map[string]int{}
	for i := range 12 {
		j := mockJob(fmt.Sprintf("job%d", i), 1+i%4)
		if i%2 == 1 {
			j.Type = "batch"
		}
		if i%3 == 0 {
			j.Gang = true
		}
		if _, err := c.RegisterJob(bg, j); err != nil {
			t.Fatal(err)
		}
		jobs[j.Name] = j.Count
	}
	for name, n := range jobs {
		waitLive(t, c, name, n)
	}
	checkNoOverCommit(t, s)
	st, err := c.SchedulerStatus(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Architecture != sharedstate.Architecture || len(st.Schedulers) != 2 || st.Placements < 30 || st.PlansSubmitted == 0 {
		t.Fatalf("status %+v", st)
	}
	if st.Schedulers[0].Name != "service" || st.Schedulers[1].Name != "batch" || st.Schedulers[1].Evaluations == 0 || st.Schedulers[0].Evaluations == 0 {
		t.Fatalf("schedulers %+v", st.Schedulers)
	}
}

// recordingPlanner passes plans to the server and records what it
// acknowledged. After holdAfter acknowledged plans it holds further
// submissions until leadership ends, then lets them race the shutdown.
type recordingPlanner struct {
	s         *Server
	holdAfter int
	mu        sync.Mutex
	plans     int
	acked     []string
}

func (r *recordingPlanner) SubmitPlan(ctx context.Context, p *structs.Plan) (*structs.PlanResult, error) {
	r.mu.Lock()
	hold := r.plans >= r.holdAfter
	r.mu.Unlock()
	if hold {
		<-ctx.Done()
		ctx = context.WithoutCancel(ctx)
	}
	res, err := r.s.SubmitPlan(ctx, p)
	r.mu.Lock()
	r.plans++
	r.mu.Unlock()
	if err == nil {
		r.mu.Lock()
		r.acked = append(r.acked, res.Placed...)
		r.mu.Unlock()
	}
	return res, err
}

func (r *recordingPlanner) ackedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.acked)
}

// TestSharedStateLeaderLossKeepsAckedPlans: leadership ends (the server
// shuts down) while 8 workers are submitting; after a restart on the same
// data, every placement the applier acknowledged is there, nothing is over
// committed, and the new leader finishes the work.
func TestSharedStateLeaderLossKeepsAckedPlans(t *testing.T) {
	cfg := testConfig(t)
	cfg.Scheduler.Architecture, cfg.Scheduler.SharedState.Workers = architecture.SharedState, 8
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingPlanner{s: s, holdAfter: 10}
	if s.sched, err = newScheduler(cfg, nil, func() (scheduler.State, error) { return s.state.Snapshot(), nil }, rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	waitFor(t, 10*time.Second, "leadership", func() (bool, string) { return s.Leader() && s.leaderReady.Load(), "not leader" })
	c, err := api.NewClient(api.Config{Address: "http://" + s.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	registerNodes(t, c, 10, 4000)
	const jobs = 40
	for i := range jobs {
		if _, err := c.RegisterJob(bg, mockJob(fmt.Sprintf("job%02d", i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "plans to be held", func() (bool, string) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.plans >= rec.holdAfter, fmt.Sprintf("%d plans", rec.plans)
	})
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	acked := rec.ackedIDs()
	oldIndex := s.State().Snapshot().Index()

	s2, c2 := startServer(t, cfg)
	// Registered after startServer's, so it runs before the shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("allocations (old leader's last index %d):\n%s", oldIndex, placementReport(s2.State().Snapshot(), acked, oldIndex))
		}
	})
	// The new leader's state has every committed entry once a barrier
	// has passed.
	if err := s2.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	snap := s2.State().Snapshot()
	for _, id := range acked {
		if a := snap.AllocByID(id); a == nil {
			t.Fatalf("acknowledged allocation %s lost across the leader change", id)
		}
	}
	// 10 nodes × 8 copies of 500m: all 80 copies fit.
	for i := range jobs {
		job := fmt.Sprintf("job%02d", i)
		waitFor(t, 20*time.Second, "2 live allocations of "+job, func() (bool, string) {
			live := liveAllocs(t, c2, job)
			return len(live) == 2, fmt.Sprintf("%d live; scheduler %+v; failure %+v", len(live), s2.sched.Status(), s2.State().Snapshot().PlacementFailure(job))
		})
	}
	checkNoOverCommit(t, s2)
	if dups := copiesLiveTwice(s2.State().Snapshot()); len(dups) > 0 {
		t.Fatalf("copies placed twice: %v", dups)
	}
	t.Logf("%d placements acknowledged before the leader stopped", len(acked))
}

// copiesLiveTwice returns the names of job copies with more than one live
// allocation.
func copiesLiveTwice(snap *state.Snapshot) []string {
	var out []string
	for _, j := range snap.Jobs() {
		seen := map[string]int{}
		for _, a := range snap.AllocsByJob(j.ID) {
			if !a.Terminal() {
				seen[a.Name]++
			}
		}
		for name, n := range seen {
			if n > 1 {
				out = append(out, fmt.Sprintf("%s x%d", name, n))
			}
		}
	}
	slices.Sort(out)
	return out
}

// placementReport lists every job's allocations (copy name, ID, node,
// create index, desired and client status; "acked" if the stopped leader
// acknowledged it, "old" if it was placed before the restart, at or below
// oldIndex) with the job's stored placement failure, each node's live
// usage, and the copies live twice: it tells a copy placed twice or a
// stray allocation from room the scheduler left unused.
func placementReport(snap *state.Snapshot, acked []string, oldIndex uint64) string {
	var b strings.Builder
	live := 0
	for _, j := range snap.Jobs() {
		fmt.Fprintf(&b, "job %s count %d version %d", j.ID, j.Count, j.Version)
		if f := snap.PlacementFailure(j.ID); f != nil {
			fmt.Fprintf(&b, "; failure: %d unplaced, %s", f.Unplaced, f.Message)
		}
		b.WriteString("\n")
		for _, a := range snap.AllocsByJob(j.ID) {
			var tags []string
			if slices.Contains(acked, a.ID) {
				tags = append(tags, "acked")
			}
			if a.CreateIndex <= oldIndex {
				tags = append(tags, "old")
			}
			if !a.Terminal() {
				live++
				tags = append(tags, "live")
			}
			fmt.Fprintf(&b, "  %s %s node %s created %d modified %d %s/%s %s\n", a.Name, a.ID, a.NodeID,
				a.CreateIndex, a.AllocModifyIndex, a.DesiredStatus, a.ClientStatus, strings.Join(tags, ","))
		}
	}
	for _, n := range snap.Nodes() {
		fmt.Fprintf(&b, "node %s %s: %s used of %s\n", n.ID, n.Status, snap.NodeUsage(n.ID), n.Capacity)
	}
	fmt.Fprintf(&b, "%d live allocations at index %d; copies live twice: %v\n", live, snap.Index(), copiesLiveTwice(snap))
	return b.String()
}
