package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestPipelinedPlansNeverOverCommit is a property test: per seed, four
// submitters race random plans (placements of random sizes on three small
// nodes, stops of the job's earlier allocations), half waiting for the
// commit and half pipelined, while the proposer fails a random fifth of the
// entries. Whatever the interleaving: no node is over-committed, every
// placement reported committed is stored, no placement of a failed plan
// (or of a plan checked against one) is, and the overlay ends empty.
func TestPipelinedPlansNeverOverCommit(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.PlanBatch = 4
			s, c := startServer(t, cfg)
			registerNodes(t, c, 3, 4000)
			jobs := []string{"a", "b"}
			for _, j := range jobs {
				if _, err := c.RegisterJob(bg, mockJob(j, 0)); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 10*time.Second, "the scheduler to see the jobs", func() (bool, string) {
				st := s.sched.Status()
				return st.Evaluations >= 2 && st.QueueDepth == 0, fmt.Sprintf("%+v", st)
			})
			var rngMu sync.Mutex
			failRng := rand.New(rand.NewPCG(seed, 99))
			injected := errors.New("injected commit failure")
			s.plans.propose = func(mt structs.MessageType, req any) func() (uint64, any, error) {
				rngMu.Lock()
				fail := failRng.IntN(5) == 0
				rngMu.Unlock()
				if fail {
					// Like a Raft timeout: later plans queue meanwhile.
					return func() (uint64, any, error) {
						time.Sleep(3 * time.Millisecond)
						return 0, nil, injected
					}
				}
				return s.raftPropose(mt, req, 0)
			}

			var mu sync.Mutex
			committed, failed := map[string]bool{}, map[string]bool{}
			var wg sync.WaitGroup
			for g := range 4 {
				rng := rand.New(rand.NewPCG(seed, uint64(g)))
				wg.Go(func() {
					var outstanding []pendingWait
					defer func() {
						for _, o := range outstanding {
							_, _ = o.wait()
						}
					}()
					for i := range 40 {
						job := jobs[rng.IntN(len(jobs))]
						plan := &structs.Plan{JobID: job}
						for k := range 1 + rng.IntN(3) {
							id := fmt.Sprintf("g%d-%d-%d", g, i, k)
							plan.Placements = append(plan.Placements, &structs.Allocation{
								ID: id, JobID: job, Name: id, NodeID: fmt.Sprintf("n%d", rng.IntN(3)),
								Resources: structs.Resources{CPU: 200 + rng.Int64N(1300), MemoryMB: 10},
							})
						}
						if rng.IntN(3) != 0 {
							var live []*structs.Allocation
							view := s.plans.snapshot()
							if ov, ok := view.(*overlayView); ok {
								for n := range 3 {
									checkOverlayUsage(t, ov, fmt.Sprintf("n%d", n), true, structs.Resources{})
								}
							}
							for _, a := range view.AllocsByJob(job) {
								if !a.Terminal() {
									live = append(live, a)
								}
							}
							if len(live) > 0 {
								a := live[rng.IntN(len(live))]
								plan.Stops = append(plan.Stops, structs.AllocStop{AllocID: a.ID, NodeID: a.NodeID, Desired: structs.AllocDesiredStop})
							}
						}
						record := func(plan *structs.Plan, res *structs.PlanResult, err error) {
							mu.Lock()
							for _, p := range plan.Placements {
								switch {
								case err != nil:
									failed[p.ID] = true
								case slices.Contains(res.Placed, p.ID):
									committed[p.ID] = true
								}
							}
							mu.Unlock()
							if err != nil && !errors.Is(err, injected) && !errors.Is(err, errPlanAborted) {
								t.Errorf("plan %d of submitter %d: %v", i, g, err)
							}
							// Not only at the end: a later stop could hide
							// an over-commit that happened meanwhile.
							if err := overCommitted(s.State().Snapshot()); err != nil {
								t.Error(err)
							}
						}
						if rng.IntN(2) == 0 {
							res, err := s.SubmitPlan(bg, plan)
							record(plan, res, err)
							continue
						}
						// Pipelined, as the monolithic scheduler: up to
						// three plans outstanding before waiting.
						_, wait, err := s.SubmitPlanPipelined(bg, plan)
						if err != nil {
							record(plan, nil, err)
							continue
						}
						outstanding = append(outstanding, pendingWait{plan, wait})
						if len(outstanding) == 3 || i == 39 {
							for _, o := range outstanding {
								res, err := o.wait()
								record(o.plan, res, err)
							}
							outstanding = nil
						}
					}
				})
			}
			wg.Wait()
			checkNoOverCommit(t, s)
			snap := s.State().Snapshot()
			for id := range committed {
				if snap.AllocByID(id) == nil {
					t.Errorf("placement %s reported committed is not stored", id)
				}
			}
			for id := range failed {
				if snap.AllocByID(id) != nil {
					t.Errorf("placement %s of a failed plan is stored", id)
				}
			}
			s.plans.mu.Lock()
			left := len(s.plans.inflight)
			s.plans.mu.Unlock()
			if left != 0 {
				t.Errorf("%d plans left in the overlay", left)
			}
			t.Logf("seed %d: %d placements committed, %d in failed plans", seed, len(committed), len(failed))
			if len(committed) == 0 {
				t.Error("nothing committed: the test exercised nothing")
			}
		})
	}
}

// overCommitted returns an error naming a node whose live allocations
// exceed it in snap.
func overCommitted(snap *state.Snapshot) error {
	for _, n := range snap.Nodes() {
		var used structs.Resources
		for _, a := range snap.AllocsByNode(n.ID) {
			if !a.Terminal() {
				used = used.Add(a.Resources)
			}
		}
		if ok, dim := n.Capacity.Fits(used); !ok {
			return fmt.Errorf("node %s over-committed on %s: %s used of %s", n.ID, dim, used, n.Capacity)
		}
	}
	return nil
}

type pendingWait struct {
	plan *structs.Plan
	wait func() (*structs.PlanResult, error)
}

// TestOverlayView: uncommitted plans laid over a snapshot, table-driven
// over the reads the scheduler and the plan check make.
func TestOverlayView(t *testing.T) {
	for _, indexed := range []bool{false, true} {
		t.Run(fmt.Sprint("indexed=", indexed), func(t *testing.T) { testOverlayView(t, indexed) })
	}
}

// testOverlayView runs the checks on a view that finds entries by scanning
// them, or through the pipeline's index.
func testOverlayView(t *testing.T, indexed bool) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.UpsertNode(1, &structs.Node{ID: "n1", Status: structs.NodeStatusReady, Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}))
	must(st.UpsertJob(2, &structs.Job{ID: "j", Version: 1}))
	run := func(id string, idx uint64) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: "j", NodeID: "n1", DesiredStatus: "run", ClientStatus: "running",
			Resources: structs.Resources{CPU: 100, MemoryMB: 10}, CreateIndex: idx}
	}
	must(st.UpsertAllocs(3, []*structs.Allocation{run("old", 0), run("dup", 0)}))
	must(st.UpsertPlacementFailure(3, &structs.PlacementFailure{JobID: "j", Unplaced: 1}))
	stopOld := run("old", 3)
	stopOld.DesiredStatus = structs.AllocDesiredStop
	placed := run("new", 0)
	placed.ClientStatus = structs.AllocClientPending
	// "dup" is in the overlay as a placement but the store has it already
	// (committed meanwhile): the store's copy wins.
	dup := run("dup", 0)
	dup.ClientStatus = structs.AllocClientPending
	e1 := newOverlayEntry(&structs.ApplyPlanRequest{JobID: "j", Allocs: []*structs.Allocation{stopOld, placed, dup}, ClearFailure: true})
	v := &overlayView{Snapshot: st.Snapshot()}
	push := func(e *overlayEntry) {
		v.entries = append(v.entries, e)
		if indexed {
			v.index = v.index.add(e)
		}
	}
	push(e1)

	desired := func(as []*structs.Allocation) map[string]string {
		m := map[string]string{}
		for _, a := range as {
			m[a.ID] = a.DesiredStatus + "/" + a.ClientStatus
		}
		return m
	}
	want := map[string]string{"old": "stop/running", "new": "run/pending", "dup": "run/running"}
	for name, got := range map[string]map[string]string{
		"by node": desired(v.AllocsByNode("n1")),
		"by job":  desired(v.AllocsByJob("j")),
	} {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	// "dup" is stored and placed by an entry the view does not take as
	// applied (as a placement taking a stored allocation's ID): counted
	// twice; the stop of "old" frees its room.
	checkOverlayUsage(t, v, "n1", true, dup.Resources)
	if a := v.AllocByID("new"); a == nil || a.DesiredStatus != "run" {
		t.Errorf("AllocByID(new) = %+v", a)
	}
	if a := v.AllocByID("dup"); a == nil || a.ClientStatus != "running" {
		t.Errorf("AllocByID(dup) = %+v, want the stored copy", a)
	}
	if f := v.PlacementFailure("j"); f != nil {
		t.Errorf("failure %+v, want cleared by the overlay", f)
	}
	if len(v.AllocsByNode("n2")) != 0 || v.AllocByID("nope") != nil {
		t.Error("overlay invents allocations")
	}
	// A later entry records a failure again; it wins over the clear.
	e2 := newOverlayEntry(&structs.ApplyPlanRequest{JobID: "j", Failure: &structs.PlacementFailure{JobID: "j", Unplaced: 7}})
	push(e2)
	if f := v.PlacementFailure("j"); f == nil || f.Unplaced != 7 {
		t.Errorf("failure %+v, want the later entry's", f)
	}
	// A later entry evicts the uncommitted placement "new".
	evictNew := placed.Copy()
	evictNew.DesiredStatus = structs.AllocDesiredEvict
	e3 := newOverlayEntry(&structs.ApplyPlanRequest{JobID: "j", Allocs: []*structs.Allocation{evictNew}})
	push(e3)
	// Evicting "new", placed by an uncommitted entry, takes off what it
	// added.
	checkOverlayUsage(t, v, "n1", true, dup.Resources)
	if got := v.NodeUsage("n1"); got.CPU != 200 {
		t.Errorf("usage %s, want 200m (dup twice)", got)
	}
	if a := v.AllocByID("new"); a == nil || a.DesiredStatus != structs.AllocDesiredEvict {
		t.Errorf("AllocByID(new) = %+v, want the latest (evicted) version", a)
	}
	if indexed {
		// Committed entries leave the index; the others stay, in order.
		x := v.index.remove(map[*overlayEntry]bool{e1: true})
		if got := x.nodeEntries("n1"); len(got) != 1 || got[0] != e3 {
			t.Errorf("after removing e1: %d entries on n1", len(got))
		}
		if a := x.latest("new"); a != evictNew {
			t.Errorf("latest(new) after removing e1 = %+v", a)
		}
		if a := x.latest("old"); a != nil {
			t.Errorf("latest(old) after removing e1 = %+v, want none", a)
		}
		x = x.remove(map[*overlayEntry]bool{e2: true, e3: true})
		if len(x.nodeEntries("n1")) != 0 || x.latest("new") != nil || x.nodes.Len() != 0 || x.allocs.Len() != 0 {
			t.Error("index not empty after removing every entry")
		}
		if len(v.index.nodeEntries("n1")) != 2 {
			t.Error("removing from a copy changed the view's index")
		}
	}
}

// checkOverlayUsage compares the view's usage of a node with a scan. The
// usage may exceed the scan (a placement taking a stored allocation's ID
// counts twice until committed: the safe side), never fall short of it;
// with exact set it must equal scan plus extra.
func checkOverlayUsage(t *testing.T, v *overlayView, node string, exact bool, extra structs.Resources) {
	t.Helper()
	var want structs.Resources
	for _, a := range v.AllocsByNode(node) {
		if !a.Terminal() {
			want = want.Add(a.Resources)
		}
	}
	got := v.NodeUsage(node)
	if ok, _ := got.Fits(want); !ok {
		t.Errorf("overlay usage of %s: %s, under the scan's %s", node, got, want)
	}
	if exact && got != want.Add(extra) {
		t.Errorf("overlay usage of %s: %s, want the scan's %s plus %s", node, got, want, extra)
	}
}

// TestNodeListFollowsNodeTable: the kept nodes are reused while the nodes
// table is unchanged and read again after any node write; a view's Nodes
// and NodeByID answer like the snapshot's.
func TestNodeListFollowsNodeTable(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	node := func(id string, status structs.NodeStatus) *structs.Node {
		return &structs.Node{ID: id, Name: id, Status: status, Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}
	}
	var c nodeList
	ids := func(ns []*structs.Node) string {
		var out []string
		for _, n := range ns {
			out = append(out, n.ID+"/"+string(n.Status))
		}
		return fmt.Sprint(out)
	}
	steps := []struct {
		name  string
		write func(index uint64) error
		want  string
	}{
		{"empty", nil, "[]"},
		{"one node", func(i uint64) error { return st.UpsertNode(i, node("a", structs.NodeStatusReady)) }, "[a/ready]"},
		{"unrelated write keeps the list", func(i uint64) error { return st.UpsertJob(i, &structs.Job{ID: "j", Name: "j"}) }, "[a/ready]"},
		{"second node", func(i uint64) error { return st.UpsertNode(i, node("b", structs.NodeStatusReady)) }, "[a/ready b/ready]"},
		{"status change", func(i uint64) error { return st.UpdateNodeStatus(i, "a", structs.NodeStatusDown, 1) }, "[a/down b/ready]"},
	}
	for i, s := range steps {
		if s.write != nil {
			if err := s.write(uint64(10 + i)); err != nil {
				t.Fatal(err)
			}
		}
		snap := st.Snapshot()
		got := c.get(snap)
		if ids(got) != s.want || ids(got) != ids(snap.Nodes()) {
			t.Errorf("%s: %s, want %s", s.name, ids(got), s.want)
		}
		if again := c.get(st.Snapshot()); len(got) > 0 && &again[0] != &got[0] {
			t.Errorf("%s: the list was read again with the nodes table unchanged", s.name)
		}
		v := &overlayView{Snapshot: snap, nodes: c.at(snap)}
		for _, id := range []string{"a", "b", "nope"} {
			if v.NodeByID(id) != snap.NodeByID(id) {
				t.Errorf("%s: NodeByID(%s) = %+v, want %+v", s.name, id, v.NodeByID(id), snap.NodeByID(id))
			}
		}
	}
}

// TestOverlayIndexMatchesScan is a property test of the overlay index: per
// seed, random plan entries (placements, stops and evictions of committed
// and of uncommitted allocations, several versions of one allocation) are
// added and the oldest removed, as the pipeline does; after every step a
// view through the index answers exactly like a view that scans the
// entries, with a random prefix of them taken as applied.
func TestOverlayIndexMatchesScan(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			st, err := state.New()
			if err != nil {
				t.Fatal(err)
			}
			nodes := []string{"n0", "n1", "n2", "n3"}
			for _, n := range nodes {
				if err := st.UpsertNode(1, &structs.Node{ID: n, Name: n, Status: structs.NodeStatusReady,
					Capacity: structs.Resources{CPU: 1 << 30, MemoryMB: 1 << 30}}); err != nil {
					t.Fatal(err)
				}
			}
			res := func() structs.Resources {
				return structs.Resources{CPU: 1 + rng.Int64N(100), MemoryMB: 1 + rng.Int64N(100)}
			}
			var committed []*structs.Allocation
			for i := range 12 {
				committed = append(committed, &structs.Allocation{ID: fmt.Sprint("c", i), JobID: "j",
					NodeID: nodes[rng.IntN(len(nodes))], Resources: res(),
					DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientRunning})
			}
			if err := st.UpsertAllocs(2, committed); err != nil {
				t.Fatal(err)
			}
			snap := st.Snapshot()
			committed = snap.AllocsByJob("j")
			var entries []*overlayEntry
			var placed []*structs.Allocation // placements of the entries, for later stops
			ix := newOverlayIndex()
			for step := range 30 {
				if len(entries) > 0 && rng.IntN(3) == 0 {
					k := 1 + rng.IntN(len(entries))
					gone := map[*overlayEntry]bool{}
					for _, e := range entries[:k] {
						gone[e] = true
					}
					ix = ix.remove(gone)
					entries = entries[k:]
				} else {
					var allocs []*structs.Allocation
					for range 1 + rng.IntN(4) {
						a := &structs.Allocation{ID: fmt.Sprintf("p%d-%d", step, len(allocs)), JobID: "j",
							NodeID: nodes[rng.IntN(len(nodes))], Resources: res(),
							DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending}
						allocs = append(allocs, a)
						placed = append(placed, a)
					}
					for range rng.IntN(3) {
						var src *structs.Allocation
						if rng.IntN(2) == 0 {
							src = committed[rng.IntN(len(committed))]
						} else {
							src = placed[rng.IntN(len(placed))]
						}
						stop := src.Copy()
						stop.DesiredStatus = structs.AllocDesiredStop
						if rng.IntN(2) == 0 {
							stop.DesiredStatus = structs.AllocDesiredEvict
						}
						allocs = append(allocs, stop)
					}
					rng.Shuffle(len(allocs), func(i, j int) { allocs[i], allocs[j] = allocs[j], allocs[i] })
					e := newOverlayEntry(&structs.ApplyPlanRequest{JobID: "j", Allocs: allocs})
					e.seq = uint64(step + 1)
					entries = append(entries, e)
					ix = ix.add(e)
				}
				// A random prefix of the entries taken as applied (in
				// the store; here only the usage counts them once).
				var applied uint64
				if k := rng.IntN(len(entries) + 1); k > 0 {
					applied = entries[k-1].seq
				}
				indexed := &overlayView{Snapshot: snap, entries: entries, index: ix, applied: applied}
				scan := &overlayView{Snapshot: snap, entries: entries, applied: applied}
				for _, n := range nodes {
					if a, b := indexed.NodeUsage(n), scan.NodeUsage(n); a != b {
						t.Fatalf("step %d: usage of %s: indexed %s, scan %s", step, n, a, b)
					}
					if a, b := fmt.Sprint(indexed.AllocsByNode(n)), fmt.Sprint(scan.AllocsByNode(n)); a != b {
						t.Fatalf("step %d: allocations of %s differ:\nindexed %s\nscan    %s", step, n, a, b)
					}
				}
				for _, a := range append(slices.Clone(committed), placed...) {
					if x, y := indexed.AllocByID(a.ID), scan.AllocByID(a.ID); x != y {
						t.Fatalf("step %d: AllocByID(%s): indexed %+v, scan %+v", step, a.ID, x, y)
					}
				}
			}
			ix = ix.remove(func() map[*overlayEntry]bool {
				m := map[*overlayEntry]bool{}
				for _, e := range entries {
					m[e] = true
				}
				return m
			}())
			if ix.nodes.Len() != 0 || ix.allocs.Len() != 0 {
				t.Fatalf("index not empty after removing every entry: %d nodes, %d allocations", ix.nodes.Len(), ix.allocs.Len())
			}
		})
	}
}

// idleScheduler is a scheduler that never runs: tests that compute and
// submit plans themselves need no other plans racing theirs.
type idleScheduler struct{}

func (idleScheduler) Enqueue(string, int)             {}
func (idleScheduler) Run(ctx context.Context)         { <-ctx.Done() }
func (idleScheduler) Status() structs.SchedulerStatus { return structs.SchedulerStatus{} }

// TestAppliedPlanCountsOnceInView: between the FSM applying a plan entry
// and the committer answering it (which takes it out of the overlay), a
// view holds the plan's placements both in its snapshot and in the
// overlay; they count once. Counted twice, the room a's copy leaves on
// the one node looked taken: b's plan recorded "1 node excluded by cpu",
// and nothing enqueued b again before the next reconcile (a job left
// unplaced in a cluster with room, as TestSharedStateLeaderLossKeepsAckedPlans
// saw now and then). The proposer holds a's answer in that window.
func TestAppliedPlanCountsOnceInView(t *testing.T) {
	s, c := startServerWith(t, testConfig(t), func(s *Server) { s.sched = idleScheduler{} })
	registerNodes(t, c, 1, 1000) // room for two copies of 500m
	for _, j := range []string{"a", "b"} {
		if _, err := c.RegisterJob(bg, mockJob(j, 1)); err != nil {
			t.Fatal(err)
		}
	}
	applied, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	s.plans.propose = func(mt structs.MessageType, req any) func() (uint64, any, error) {
		wait := s.raftPropose(mt, req, 0)
		if held.Swap(true) {
			return wait
		}
		return func() (uint64, any, error) {
			index, resp, err := wait()
			close(applied)
			<-release
			return index, resp, err
		}
	}
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the server's shutdown, which waits for the committer

	opts := scheduler.Options{Rand: rand.New(rand.NewPCG(1, 2))}
	ra, err := scheduler.ComputePlan(opts, s.plans.snapshot(), "a")
	if err != nil || len(ra.Plan.Placements) != 1 {
		t.Fatalf("a: %+v, %v", ra, err)
	}
	_, waitA, err := s.SubmitPlanPipelined(bg, ra.Plan)
	if err != nil {
		t.Fatal(err)
	}
	<-applied
	snap := s.State().Snapshot()
	if snap.AllocByID(ra.Plan.Placements[0].ID) == nil {
		t.Fatal("a's entry answered before it applied")
	}
	view := s.plans.snapshot().(*overlayView)
	if len(view.entries) != 1 {
		t.Fatalf("%d entries in the overlay, want a's (its answer is held)", len(view.entries))
	}
	if got, want := view.NodeUsage("n0"), snap.NodeUsage("n0"); got != want {
		t.Errorf("view's usage of n0 %s, want the store's %s (a's copy once)", got, want)
	}
	checkOverlayUsage(t, view, "n0", true, structs.Resources{})
	rb, err := scheduler.ComputePlan(opts, view, "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Plan.Placements) != 1 || rb.Plan.Failure != nil {
		t.Fatalf("b: %d placed, failure %+v; want its copy on n0", len(rb.Plan.Placements), rb.Plan.Failure)
	}
	resB, waitB, err := s.SubmitPlanPipelined(bg, rb.Plan)
	if err != nil || len(resB.RejectedNodes) != 0 {
		t.Fatalf("b's plan: %+v, %v; want it accepted", resB, err)
	}
	letGo()
	for _, w := range []func() (*structs.PlanResult, error){waitA, waitB} {
		if res, err := w(); err != nil || len(res.Placed) != 1 {
			t.Fatalf("commit: %+v, %v", res, err)
		}
	}
	checkNoOverCommit(t, s)
	if u := s.State().Snapshot().NodeUsage("n0"); u.CPU != 1000 {
		t.Fatalf("n0 uses %s, want both copies (1000m)", u)
	}
}
