package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// testArchitectures are the architectures per-node jobs and plans are
// tested under.
var testArchitectures = []string{architecture.Monolithic, architecture.SharedState}

func archConfig(t *testing.T, arch string) Config {
	cfg := testConfig(t)
	cfg.Scheduler.Architecture = arch
	return cfg
}

// liveIDs returns the IDs of the job's live allocations.
func liveIDs(t *testing.T, c *api.Client, job string) map[string]bool {
	out := map[string]bool{}
	for _, a := range liveAllocs(t, c, job) {
		out[a.ID] = true
	}
	return out
}

// TestJobPlanMatchesRun: for each change, `job plan` predicts the counts
// of the table, and `job run` of the same document then does exactly what
// the plan said: new copies, stopped copies, copies kept, copies that do
// not fit (with the same reason).
func TestJobPlanMatchesRun(t *testing.T) {
	type want struct {
		update                                  string
		place, replace, stop, inPlace, unplaced int
	}
	cases := []struct {
		name   string
		change func(j *api.Job)
		want   want
	}{
		{"scale up", func(j *api.Job) { j.Count = 4 }, want{update: api.PlanUpdateInPlace, place: 2, inPlace: 2}},
		{"metadata in place", func(j *api.Job) { j.Meta = map[string]string{"team": "web"} }, want{update: api.PlanUpdateInPlace, inPlace: 2}},
		{"env change replaces", func(j *api.Job) { j.Env = map[string]string{"A": "2"} }, want{update: api.PlanUpdateDestructive, replace: 2}},
		{"constraint cannot fit", func(j *api.Job) {
			j.Constraints = []api.Constraint{{Label: "zone", Operator: "=", Value: "nowhere"}}
		}, want{update: api.PlanUpdateDestructive, stop: 2, unplaced: 2}},
		{"scale down", func(j *api.Job) { j.Count = 1 }, want{update: api.PlanUpdateInPlace, stop: 1, inPlace: 1}},
		{"no change", func(*api.Job) {}, want{update: api.PlanUpdateNone}},
	}
	for _, arch := range testArchitectures {
		for _, tc := range cases {
			t.Run(arch+"/"+tc.name, func(t *testing.T) {
				s, c := startServer(t, archConfig(t, arch))
				registerNodes(t, c, 2, 4000)
				if _, err := c.RegisterJob(bg, mockJob("web", 2)); err != nil {
					t.Fatal(err)
				}
				waitLive(t, c, "web", 2)
				before := liveIDs(t, c, "web")

				j := mockJob("web", 2)
				tc.change(j)
				p, err := c.PlanJob(bg, j)
				if err != nil {
					t.Fatal(err)
				}
				stops := 0
				for _, n := range p.Stop {
					stops += n
				}
				got := want{p.Update, p.Place, p.Replace, stops, p.InPlace, p.Unplaced}
				if got != tc.want {
					t.Fatalf("plan: got %+v, want %+v (%+v)", got, tc.want, p)
				}
				if tc.want.unplaced > 0 && (p.Failure == nil || p.Failure.NodesFiltered["constraint zone = nowhere"] != 2) {
					t.Fatalf("plan failure: %+v", p.Failure)
				}
				// Nothing was committed.
				if cur := liveIDs(t, c, "web"); !mapsEqual(cur, before) {
					t.Fatalf("plan changed allocations: %v -> %v", before, cur)
				}

				// A stale check index is refused; the plan's index is taken.
				if _, err := c.RegisterJobIndex(bg, j, p.JobModifyIndex+1000); !isStatus(err, 409) {
					t.Fatalf("run with a stale check index: %v, want 409", err)
				}
				if _, err := c.RegisterJobIndex(bg, j, p.JobModifyIndex); err != nil {
					t.Fatalf("run with the plan's check index: %v", err)
				}
				// The run is committed at the plan's version; then its
				// allocations reach what the plan said (or the wait fails).
				job, _, err := c.Job(bg, "web", nil)
				if err != nil || job.Version != p.Version || job.ModifyIndex <= p.JobModifyIndex {
					t.Fatalf("after run: %+v %v, want version %d modified after %d", job, err, p.Version, p.JobModifyIndex)
				}
				waitFor(t, 20*time.Second, "the run to do what the plan said", func() (bool, string) {
					added, kept := 0, 0
					for id := range liveIDs(t, c, "web") {
						if before[id] {
							kept++
						} else {
							added++
						}
					}
					f := s.State().Snapshot().PlacementFailure("web")
					failed := 0
					if f != nil {
						failed = f.Unplaced
					}
					return added == p.Place+p.Replace && kept == p.InPlace+p.Ignore && failed == p.Unplaced,
						fmt.Sprintf("%d new, %d kept, %d unplaced; plan said %d new, %d kept, %d unplaced",
							added, kept, failed, p.Place+p.Replace, p.InPlace+p.Ignore, p.Unplaced)
				})
				if p.Unplaced > 0 {
					f := s.State().Snapshot().PlacementFailure("web")
					if f.Message != p.Failure.Message {
						t.Fatalf("run failure %q, plan said %q", f.Message, p.Failure.Message)
					}
				}
			})
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestJobPlanNewJobAndCheckIndexZero: a plan of a job that does not exist
// is a create at index 0, and --check-index 0 registers only while the
// job does not exist.
func TestJobPlanNewJobAndCheckIndexZero(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	registerNodes(t, c, 1, 4000)
	p, err := c.PlanJob(bg, mockJob("new", 3))
	if err != nil {
		t.Fatal(err)
	}
	if p.Update != api.PlanUpdateCreate || p.JobModifyIndex != 0 || p.Place != 3 || p.Version != 1 {
		t.Fatalf("plan: %+v", p)
	}
	if !slices.ContainsFunc(p.Diff, func(d api.JobFieldDiff) bool { return d.Field == "count" && d.New == "3" }) {
		t.Fatalf("diff lacks count: %+v", p.Diff)
	}
	if _, err := c.RegisterJobIndex(bg, mockJob("new", 3), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJobIndex(bg, mockJob("new", 4), 0); !isStatus(err, 409) {
		t.Fatalf("second create with index 0: %v, want 409", err)
	}
	bad := mockJob("new", 3)
	bad.Resources.CPU = 0
	if _, err := c.PlanJob(bg, bad); !isStatus(err, 400) {
		t.Fatalf("plan of an invalid job: %v, want 400", err)
	}
}

// TestJobHistoryAndRevert: every version is kept (a count change updates
// the current version's row), bounded by JobVersionsKept; a revert
// registers an old spec as a new version; purging drops the history.
func TestJobHistoryAndRevert(t *testing.T) {
	cfg := testConfig(t)
	cfg.JobVersionsKept = 3
	s, c := startServer(t, cfg)
	env := func(v string) *api.Job {
		j := mockJob("web", 1)
		j.Env = map[string]string{"V": v}
		return j
	}
	for _, v := range []string{"a", "b", "c"} {
		if _, err := c.RegisterJob(bg, env(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ScaleJob(bg, "web", 2); err != nil {
		t.Fatal(err)
	}
	h, err := c.JobVersions(bg, "web")
	if err != nil {
		t.Fatal(err)
	}
	versions := func(h *api.JobVersionsResponse) []uint64 {
		var out []uint64
		for _, v := range h.Versions {
			out = append(out, v.Version)
		}
		return out
	}
	if got := versions(h); !slices.Equal(got, []uint64{3, 2, 1}) || h.Versions[0].Count != 2 {
		t.Fatalf("history %v (count %d), want [3 2 1] with count 2", got, h.Versions[0].Count)
	}
	if d := h.Diffs[0]; len(d) != 2 || d[0].Field != "count" || d[1].Field != "env.V" {
		t.Fatalf("diff 2->3: %+v", d)
	}
	res, err := c.RevertJob(bg, "web", 1, nil)
	if err != nil || res.Version != 4 {
		t.Fatalf("revert to 1: %+v %v", res, err)
	}
	j, _, err := c.Job(bg, "web", nil)
	if err != nil || j.Env["V"] != "a" {
		t.Fatalf("after revert: %+v %v", j, err)
	}
	h, _ = c.JobVersions(bg, "web")
	if got := versions(h); !slices.Equal(got, []uint64{4, 3, 2}) {
		t.Fatalf("history after revert %v, want [4 3 2] (bounded to 3)", got)
	}
	if _, err := c.RevertJob(bg, "web", 1, nil); !api.IsNotFound(err) {
		t.Fatalf("revert to a dropped version: %v, want 404", err)
	}
	prior := uint64(3)
	if _, err := c.RevertJob(bg, "web", 2, &prior); !isStatus(err, 409) {
		t.Fatalf("revert with a wrong prior version: %v, want 409", err)
	}
	if _, err := c.RevertJob(bg, "web", 4, nil); !isStatus(err, 400) {
		t.Fatalf("revert to the current version: %v, want 400", err)
	}
	if _, err := c.StopJob(bg, "web", true); err != nil {
		t.Fatal(err)
	}
	if vs := s.State().Snapshot().JobVersions(nil, "web"); len(vs) != 0 {
		t.Fatalf("%d versions kept after purge", len(vs))
	}
}

// TestSystemJobFollowsNodes: a system job runs one copy on every eligible
// node (the constraint excludes one), a node that joins gets one as soon
// as it registers, a drained node's copy is stopped and not replaced
// elsewhere, and a version change replaces each copy on its node.
func TestSystemJobFollowsNodes(t *testing.T) {
	for _, arch := range testArchitectures {
		t.Run(arch, func(t *testing.T) {
			_, c := startServer(t, archConfig(t, arch))
			for i, zone := range []string{"a", "a", "b"} {
				n := fakeNode(fmt.Sprintf("n%d", i), 4000, 4096)
				n.Labels = map[string]string{"zone": zone}
				if _, err := c.RegisterNode(bg, n); err != nil {
					t.Fatal(err)
				}
			}
			j := mockJob("agent", 0)
			j.Type = structs.JobTypeSystem
			j.Constraints = []api.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
			if _, err := c.RegisterJob(bg, j); err != nil {
				t.Fatal(err)
			}
			onNodes := func(live []*api.Allocation) []string {
				var out []string
				for _, a := range live {
					out = append(out, a.NodeID)
				}
				slices.Sort(out)
				return out
			}
			if got := onNodes(waitLive(t, c, "agent", 2)); !slices.Equal(got, []string{"n0", "n1"}) {
				t.Fatalf("copies on %v, want n0 n1", got)
			}
			n3 := fakeNode("n3", 4000, 4096)
			n3.Labels = map[string]string{"zone": "a"}
			if _, err := c.RegisterNode(bg, n3); err != nil {
				t.Fatal(err)
			}
			if got := onNodes(waitLive(t, c, "agent", 3)); !slices.Equal(got, []string{"n0", "n1", "n3"}) {
				t.Fatalf("copies on %v after n3 joined, want n0 n1 n3", got)
			}
			if _, err := c.DrainNode(bg, "n0", true); err != nil {
				t.Fatal(err)
			}
			if got := onNodes(waitLive(t, c, "agent", 2)); !slices.Equal(got, []string{"n1", "n3"}) {
				t.Fatalf("copies on %v after draining n0, want n1 n3", got)
			}
			old := liveIDs(t, c, "agent")
			j.Env = map[string]string{"V": "2"}
			if _, err := c.RegisterJob(bg, j); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "version 2 on n1 and n3", func() (bool, string) {
				live := liveAllocs(t, c, "agent")
				for _, a := range live {
					if old[a.ID] || a.JobVersion != 2 {
						return false, fmt.Sprintf("%s v%d on %s", a.ID, a.JobVersion, a.NodeID)
					}
				}
				got := onNodes(live)
				return slices.Equal(got, []string{"n1", "n3"}), fmt.Sprint(got)
			})
		})
	}
}

// manualClock is a virtual clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestPeriodicLaunchesOnVirtualClock: launches happen at the cron times of
// the job's zone as the virtual clock reaches them (no sleeping), the
// children are named NAME.periodic-<unix>, and prohibit_overlap skips a
// launch while a child still runs.
func TestPeriodicLaunchesOnVirtualClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 13, 1, 0, 0, time.UTC)
	clock := &manualClock{now: t0}
	s, c := startServerWith(t, testConfig(t), func(s *Server) { s.now = clock.Now })
	j := mockJob("report", 1)
	j.Type = structs.JobTypeBatch
	// 8:05, 8:10 ... in New York: 13:05, 13:10 ... UTC in January.
	j.Periodic = &api.PeriodicConfig{Cron: "5-59/5 8 * * *", TimeZone: "America/New_York", ProhibitOverlap: true}
	if _, err := c.RegisterJob(bg, j); err != nil {
		t.Fatal(err)
	}
	children := func() []string {
		var out []string
		for _, j := range s.State().Snapshot().Jobs() {
			if j.ParentID == "report" {
				out = append(out, j.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	at := func(h, m int) time.Time { return time.Date(2026, 1, 1, h, m, 0, 0, time.UTC) }
	name := func(h, m int) string { return structs.PeriodicChildName("report", at(h, m)) }

	if next := s.periodicPass(t0); !next.Equal(at(13, 5)) || len(children()) != 0 {
		t.Fatalf("at 13:01: next %v, children %v; want 13:05 and none", next, children())
	}
	clock.Set(at(13, 5))
	if next := s.periodicPass(at(13, 5)); !next.Equal(at(13, 10)) {
		t.Fatalf("next after 13:05 launch: %v", next)
	}
	if got := children(); !slices.Equal(got, []string{name(13, 5)}) {
		t.Fatalf("children %v, want %s", got, name(13, 5))
	}
	if child := s.State().Snapshot().JobByID(name(13, 5)); child.Periodic != nil || child.Count != 1 {
		t.Fatalf("child %+v", child)
	}
	// No node: the 13:05 child is pending, so 13:10 is skipped.
	clock.Set(at(13, 11))
	s.periodicPass(at(13, 11))
	if got := children(); len(got) != 1 {
		t.Fatalf("overlapping launch not skipped: %v", got)
	}
	if _, err := c.StopJob(bg, name(13, 5), false); err != nil {
		t.Fatal(err)
	}
	// Missed 13:15 and 13:20 launch once, at the latest time.
	clock.Set(at(13, 22))
	s.periodicPass(at(13, 22))
	if got := children(); !slices.Equal(got, []string{name(13, 5), name(13, 20)}) {
		t.Fatalf("children %v, want the 13:05 and 13:20 launches", got)
	}
	// 13:55 is skipped (the 13:20 child runs); the 8 o'clock hour in New
	// York is over: the next is tomorrow 13:05 UTC.
	clock.Set(at(13, 56))
	if next := s.periodicPass(at(13, 56)); !next.Equal(time.Date(2026, 1, 2, 13, 5, 0, 0, time.UTC)) || len(children()) != 2 {
		t.Fatalf("at 13:56: next %v, children %v", next, children())
	}
	// Garbage collection keeps the latest child (the launcher reads the
	// last launch from it) and collects older finished ones.
	if _, err := c.StopJob(bg, name(13, 20), false); err != nil {
		t.Fatal(err)
	}
	collected := map[string]bool{}
	for _, it := range chooseGarbage(s.State().Snapshot(), at(13, 56), DefaultConfig().gcPolicy(true)) {
		if it.allocID == "" {
			collected[it.job.ID] = true
		}
	}
	if !collected[name(13, 5)] || collected[name(13, 20)] || collected["report"] {
		t.Fatalf("collected %v: want the 13:05 child only", collected)
	}
	// A periodic parent places nothing itself even with nodes around.
	registerNodes(t, c, 1, 4000)
	if live := liveAllocs(t, c, "report"); len(live) != 0 {
		t.Fatalf("the parent has %d live allocations", len(live))
	}
}

// TestDispatch: a parameterized job's dispatches are checked (payload
// rule and size, required and allowed metadata), and a good one registers
// a child NAME.dispatch-<id> with the payload and the merged metadata,
// which runs while the parent places nothing.
func TestDispatch(t *testing.T) {
	for _, arch := range testArchitectures {
		t.Run(arch, func(t *testing.T) {
			s, c := startServer(t, archConfig(t, arch))
			registerNodes(t, c, 1, 4000)
			j := mockJob("resize", 1)
			j.Type = structs.JobTypeBatch
			j.Meta = map[string]string{"owner": "media"}
			j.Parameterized = &api.ParameterizedConfig{Payload: structs.DispatchPayloadRequired,
				MetaRequired: []string{"size"}, MetaOptional: []string{"format"}}
			if _, err := c.RegisterJob(bg, j); err != nil {
				t.Fatal(err)
			}
			bad := []struct {
				payload []byte
				meta    map[string]string
			}{
				{nil, map[string]string{"size": "s"}},                                        // payload required
				{[]byte("x"), nil},                                                           // size missing
				{[]byte("x"), map[string]string{"size": "s", "colour": "red"}},               // not allowed
				{make([]byte, structs.MaxDispatchPayload+1), map[string]string{"size": "s"}}, // too large
			}
			for i, b := range bad {
				if _, err := c.DispatchJob(bg, "resize", b.payload, b.meta); !isStatus(err, 400) {
					t.Fatalf("bad dispatch %d: %v, want 400", i, err)
				}
			}
			if _, err := c.DispatchJob(bg, "web", nil, nil); !api.IsNotFound(err) {
				t.Fatalf("dispatch of an unknown job: %v, want 404", err)
			}
			res, err := c.DispatchJob(bg, "resize", []byte("image"), map[string]string{"size": "s"})
			if err != nil {
				t.Fatal(err)
			}
			child := s.State().Snapshot().JobByID(res.JobID)
			if child == nil || child.ParentID != "resize" || string(child.Payload) != "image" ||
				child.Meta["size"] != "s" || child.Meta["owner"] != "media" || child.Parameterized != nil {
				t.Fatalf("child %+v", child)
			}
			if len(res.JobID) != len("resize"+structs.DispatchSuffix)+16 {
				t.Fatalf("child ID %q", res.JobID)
			}
			waitLive(t, c, res.JobID, 1)
			if live := liveAllocs(t, c, "resize"); len(live) != 0 {
				t.Fatalf("the parameterized parent has %d live allocations", len(live))
			}
		})
	}
}

// TestTwoLevelRefusesPerNodeJobs: system jobs are refused with the reason
// under the two-level architecture; periodic templates are accepted.
func TestTwoLevelRefusesPerNodeJobs(t *testing.T) {
	_, c := startServer(t, archConfig(t, architecture.TwoLevel))
	j := mockJob("agent", 0)
	j.Type = structs.JobTypeSystem
	if _, err := c.RegisterJob(bg, j); !isStatus(err, 400) {
		t.Fatalf("system job under two-level: %v, want 400", err)
	}
	p := mockJob("nightly", 1)
	p.Type = structs.JobTypeBatch
	p.Periodic = &api.PeriodicConfig{Cron: "@daily"}
	if _, err := c.RegisterJob(bg, p); err != nil {
		t.Fatalf("periodic job under two-level: %v", err)
	}
}

// TestDecidePeriodic: the launcher's rule on a virtual clock.
func TestDecidePeriodic(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 6, 1, 10, m, 0, 0, time.UTC) }
	job := func(cron string, overlap bool) *structs.Job {
		return &structs.Job{ID: "p", Name: "p", SubmitTime: at(0).UnixNano(),
			Periodic: &structs.PeriodicConfig{Cron: cron, ProhibitOverlap: overlap}}
	}
	cases := []struct {
		name               string
		job                *structs.Job
		last, skipped, now time.Time
		running            bool
		launch, skip, next time.Time
	}{
		{"not yet", job("*/10 * * * *", false), time.Time{}, time.Time{}, at(5), false, time.Time{}, time.Time{}, at(10)},
		{"due", job("*/10 * * * *", false), time.Time{}, time.Time{}, at(10), false, at(10), time.Time{}, at(20)},
		{"missed ones launch once, the latest", job("*/10 * * * *", false), time.Time{}, time.Time{}, at(35), false, at(30), time.Time{}, at(40)},
		{"launched already", job("*/10 * * * *", false), at(30), time.Time{}, at(35), false, time.Time{}, time.Time{}, at(40)},
		{"overlap allowed", job("*/10 * * * *", false), at(10), time.Time{}, at(20), true, at(20), time.Time{}, at(30)},
		{"overlap prohibited", job("*/10 * * * *", true), at(10), time.Time{}, at(20), true, time.Time{}, at(20), at(30)},
		{"skipped stays skipped", job("*/10 * * * *", true), at(10), at(20), at(25), false, time.Time{}, time.Time{}, at(30)},
		{"never fires", job("0 0 30 2 *", false), time.Time{}, time.Time{}, at(5), false, time.Time{}, time.Time{}, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decidePeriodic(tc.job, tc.last, tc.skipped, tc.running, tc.now)
			if !d.Launch.Equal(tc.launch) || !d.Skip.Equal(tc.skip) || !d.Next.Equal(tc.next) {
				t.Fatalf("got launch %v skip %v next %v; want %v %v %v", d.Launch, d.Skip, d.Next, tc.launch, tc.skip, tc.next)
			}
		})
	}
}

// TestSysbatchRunsOncePerNode: a sysbatch copy that completes on a node is
// not run there again; once every copy completed the job is dead, and a
// node that joins later runs it, which makes it live again.
func TestSysbatchRunsOncePerNode(t *testing.T) {
	for _, arch := range testArchitectures {
		t.Run(arch, func(t *testing.T) {
			s, c := startServer(t, archConfig(t, arch))
			registerNodes(t, c, 2, 4000)
			j := mockJob("sweep", 0)
			j.Type = structs.JobTypeSysBatch
			if _, err := c.RegisterJob(bg, j); err != nil {
				t.Fatal(err)
			}
			complete := func(live []*api.Allocation) {
				for _, a := range live {
					if _, err := c.UpdateAllocations(bg, a.NodeID, []*api.AllocClientUpdate{{ID: a.ID, ClientStatus: structs.AllocClientComplete}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			complete(waitLive(t, c, "sweep", 2))
			status := func() structs.JobStatus {
				snap := s.State().Snapshot()
				return state.JobStatus(snap.JobByID("sweep"), snap.AllocsByJob("sweep"))
			}
			waitFor(t, 20*time.Second, "the sysbatch job dead", func() (bool, string) {
				return status() == structs.JobStatusDead, string(status())
			})
			s.enqueueAllJobs() // a pass over the finished job places nothing
			if _, err := c.RegisterNode(bg, fakeNode("n9", 4000, 64*1024)); err != nil {
				t.Fatal(err)
			}
			live := waitLive(t, c, "sweep", 1)
			if live[0].NodeID != "n9" {
				t.Fatalf("copy on %s, want the new node n9", live[0].NodeID)
			}
			if st := status(); st == structs.JobStatusDead {
				t.Fatal("the job is still dead with a copy to run")
			}
			if n := len(s.State().Snapshot().AllocsByJob("sweep")); n != 3 {
				t.Fatalf("%d allocations, want 3 (one per node, none run twice)", n)
			}
		})
	}
}
