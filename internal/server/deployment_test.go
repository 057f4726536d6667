package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// fakeAgents plays the agents of fake nodes through the API, as a real
// agent reports: a copy the server wants running starts (running, with its
// start time) unless its version is in failing (it fails at once); a copy
// the server stopped completes. It polls every 15 ms until stopped.
type fakeAgents struct {
	c       *api.Client
	jobs    []string
	mu      sync.Mutex
	failing map[uint64]bool
	cancel  context.CancelFunc
	done    chan struct{}
}

func startFakeAgents(t testing.TB, c *api.Client, jobs ...string) *fakeAgents {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeAgents{c: c, jobs: jobs, failing: map[uint64]bool{}, cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeAgents) stop() {
	f.cancel()
	<-f.done
}

func (f *fakeAgents) fail(version uint64) {
	f.mu.Lock()
	f.failing[version] = true
	f.mu.Unlock()
}

func (f *fakeAgents) run(ctx context.Context) {
	defer close(f.done)
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, job := range f.jobs {
			allocs, _, err := f.c.JobAllocations(ctx, job, nil)
			if err != nil {
				continue // a leader change: next tick
			}
			byNode := map[string][]*api.AllocClientUpdate{}
			now := time.Now().UnixNano()
			for _, a := range allocs {
				var u *api.AllocClientUpdate
				switch {
				case a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus == structs.AllocClientPending:
					f.mu.Lock()
					failing := f.failing[a.JobVersion]
					f.mu.Unlock()
					if failing {
						u = &api.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientFailed,
							TaskState: structs.TaskState{State: structs.TaskStateDead, Failed: true, ExitCode: 1, StartedAt: now, FinishedAt: now}}
					} else {
						u = &api.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientRunning,
							TaskState: structs.TaskState{State: structs.TaskStateRunning, StartedAt: now}}
					}
				case a.DesiredStatus != structs.AllocDesiredRun && (a.ClientStatus == structs.AllocClientRunning || a.ClientStatus == structs.AllocClientPending):
					u = &api.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientComplete,
						TaskState: structs.TaskState{State: structs.TaskStateDead, StartedAt: a.TaskState.StartedAt, FinishedAt: now}}
				}
				if u != nil {
					byNode[a.NodeID] = append(byNode[a.NodeID], u)
				}
			}
			for node, ups := range byNode {
				_, _ = f.c.UpdateAllocations(ctx, node, ups)
			}
		}
	}
}

// healthySampler samples a job's copies through the API and records the
// fewest healthy ones seen: wanted running, running, and started at least
// minHealthy ago.
type healthySampler struct {
	mu      sync.Mutex
	min     int
	samples int
	cancel  context.CancelFunc
	done    chan struct{}
}

func startSampler(c *api.Client, job string, minHealthy time.Duration) *healthySampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &healthySampler{min: 1 << 30, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			allocs, _, err := c.JobAllocations(ctx, job, nil)
			if err == nil {
				now := time.Now()
				n := 0
				for _, a := range allocs {
					if a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus == structs.AllocClientRunning &&
						!now.Before(time.Unix(0, a.TaskState.StartedAt).Add(minHealthy)) {
						n++
					}
				}
				s.mu.Lock()
				s.min = min(s.min, n)
				s.samples++
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *healthySampler) stop() (minHealthy, samples int) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.min, s.samples
}

// longTTL: the fake nodes do not heartbeat.
func longTTL(cfg Config) Config {
	cfg.HeartbeatTTL = time.Hour
	return cfg
}

func rollingJob(env string, count int, u *api.UpdateStrategy) *api.Job {
	j := mockJob("web", count)
	j.Env = map[string]string{"V": env}
	j.Update = u
	return j
}

// waitDeployment waits for the job's deployment of version v to reach
// status and returns it.
func waitDeployment(t *testing.T, c *api.Client, job string, v uint64, status string) *api.Deployment {
	t.Helper()
	var d *api.Deployment
	waitFor(t, 60*time.Second, fmt.Sprintf("deployment of %s version %d %s", job, v, status), func() (bool, string) {
		list, _, err := c.ListDeployments(bg, nil)
		if err != nil {
			return false, err.Error()
		}
		for _, got := range list {
			if got.JobID == job && got.JobVersion == v {
				d = got
				return d.Status == status, fmt.Sprintf("%s (%s)", d.Status, d.StatusDescription)
			}
		}
		return false, "no deployment of that version"
	})
	return d
}

// liveVersions counts the live copies of a job by version.
func liveVersions(t *testing.T, c *api.Client, job string) map[uint64]int {
	out := map[uint64]int{}
	for _, a := range liveAllocs(t, c, job) {
		out[a.JobVersion]++
	}
	return out
}

func registerBigNodes(t *testing.T, c *api.Client, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%d", i+1), 8000, 8192)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRollingUpdate is the acceptance: 6 copies with max_parallel
// 2 roll from version 1 to 2 with never fewer than 4 healthy copies
// (sampled through the API) and version 2 everywhere at the end; then a
// failing version 3 with auto_revert ends on version 2's spec.
func TestRollingUpdate(t *testing.T) {
	for _, arch := range []string{"monolithic", "shared-state", "two-level"} {
		t.Run(arch, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Scheduler.Architecture = arch
			cfg.HeartbeatTTL = time.Hour // the fake nodes do not heartbeat
			_, c := startServer(t, cfg)
			registerBigNodes(t, c, 3)
			agents := startFakeAgents(t, c, "web")
			const minHealthy = 150 * time.Millisecond
			u := &api.UpdateStrategy{MaxParallel: 2, MinHealthyTime: structs.Duration(minHealthy),
				HealthyDeadline: structs.Duration(20 * time.Second), ProgressDeadline: structs.Duration(40 * time.Second), AutoRevert: true}

			if _, err := c.RegisterJob(bg, rollingJob("1", 6, u)); err != nil {
				t.Fatal(err)
			}
			waitDeployment(t, c, "web", 1, api.DeploymentSuccessful)

			sampler := startSampler(c, "web", minHealthy)
			resp, err := c.RegisterJob(bg, rollingJob("2", 6, u))
			if err != nil || resp.Version != 2 {
				t.Fatalf("register v2: %v %+v", err, resp)
			}
			d := waitDeployment(t, c, "web", 2, api.DeploymentSuccessful)
			lowest, samples := sampler.stop()
			t.Logf("rolling 6 copies, max_parallel 2: fewest healthy %d over %d samples", lowest, samples)
			if lowest < 4 {
				t.Errorf("fewest healthy copies during the update: %d, want >= 4", lowest)
			}
			if got := liveVersions(t, c, "web"); got[2] != 6 || len(got) != 1 {
				t.Fatalf("live copies by version after the update: %v, want 6 of version 2", got)
			}
			if len(d.Healthy) != 6 {
				t.Errorf("deployment healthy copies %d, want 6", len(d.Healthy))
			}
			vs, err := c.JobVersions(bg, "web")
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs.Versions {
				if !v.Stable {
					t.Errorf("version %d not stable after its successful deployment", v.Version)
				}
			}

			// Version 3 fails: its deployment fails and the job rolls back.
			agents.fail(3)
			if _, err := c.RegisterJob(bg, rollingJob("3", 6, u)); err != nil {
				t.Fatal(err)
			}
			failed := waitDeployment(t, c, "web", 3, api.DeploymentFailed)
			if failed.RevertedTo != 2 || !strings.Contains(failed.StatusDescription, "unhealthy") {
				t.Fatalf("failed deployment: reverted to %d, %q", failed.RevertedTo, failed.StatusDescription)
			}
			waitDeployment(t, c, "web", 4, api.DeploymentSuccessful)
			j, _, err := c.Job(bg, "web", nil)
			if err != nil {
				t.Fatal(err)
			}
			if j.Version != 4 || j.Env["V"] != "2" {
				t.Fatalf("after the revert: version %d env %v, want version 4 with version 2's env", j.Version, j.Env)
			}
			if got := liveVersions(t, c, "web"); got[4] != 6 || len(got) != 1 {
				t.Fatalf("live copies by version after the revert: %v, want 6 of version 4 (version 2's spec)", got)
			}
		})
	}
}

// TestCanaryDeployment: one canary beside the old copies, promotion, then
// the rest; then a failed canary leaves the old copies untouched.
func TestCanaryDeployment(t *testing.T) {
	_, c := startServer(t, longTTL(testConfig(t)))
	registerBigNodes(t, c, 2)
	agents := startFakeAgents(t, c, "web")
	u := &api.UpdateStrategy{MaxParallel: 2, Canary: 1, MinHealthyTime: structs.Duration(100 * time.Millisecond),
		HealthyDeadline: structs.Duration(20 * time.Second), ProgressDeadline: structs.Duration(40 * time.Second)}
	if _, err := c.RegisterJob(bg, rollingJob("1", 4, u)); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, c, "web", 1, api.DeploymentSuccessful)

	if _, err := c.RegisterJob(bg, rollingJob("2", 4, u)); err != nil {
		t.Fatal(err)
	}
	var d *api.Deployment
	waitFor(t, 30*time.Second, "the canary healthy", func() (bool, string) {
		got, _, err := c.JobDeployment(bg, "web", nil)
		if err != nil {
			return false, err.Error()
		}
		d = got
		return d.JobVersion == 2 && len(d.Canaries) == 1 && d.IsHealthy(d.Canaries[0]), fmt.Sprintf("%+v", d)
	})
	// Waiting for promotion: nothing more happens.
	time.Sleep(300 * time.Millisecond)
	if got := liveVersions(t, c, "web"); got[1] != 4 || got[2] != 1 {
		t.Fatalf("before promotion: live copies by version %v, want 4 old and 1 canary", got)
	}
	if d, _, _ = c.JobDeployment(bg, "web", nil); d.Status != api.DeploymentRunning || d.Promoted {
		t.Fatalf("before promotion: %s promoted=%v", d.Status, d.Promoted)
	}
	if _, err := c.DeploymentAction(bg, d.ID[:8], "promote"); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, c, "web", 2, api.DeploymentSuccessful)
	if got := liveVersions(t, c, "web"); got[2] != 4 || len(got) != 1 {
		t.Fatalf("after promotion: live copies by version %v, want 4 of version 2", got)
	}
	before := map[string]bool{}
	for _, a := range liveAllocs(t, c, "web") {
		before[a.ID] = true
	}

	// A failing canary: the deployment fails, the old copies stay.
	agents.fail(3)
	if _, err := c.RegisterJob(bg, rollingJob("3", 4, u)); err != nil {
		t.Fatal(err)
	}
	failed := waitDeployment(t, c, "web", 3, api.DeploymentFailed)
	if len(failed.Canaries) != 1 {
		t.Errorf("failed deployment canaries %v, want 1", failed.Canaries)
	}
	time.Sleep(300 * time.Millisecond) // room for a wrong stop to show
	live := liveAllocs(t, c, "web")
	if len(live) != 4 {
		t.Fatalf("after the failed canary: %d live copies, want the 4 old ones", len(live))
	}
	for _, a := range live {
		if !before[a.ID] || a.JobVersion != 2 || a.ClientStatus != structs.AllocClientRunning {
			t.Errorf("copy %s (version %d, %s) is not one of the old copies left running", a.ID, a.JobVersion, a.ClientStatus)
		}
	}
}

// TestDeploymentActions: pause holds the waves, resume continues them,
// fail ends the deployment; actions on a finished deployment conflict.
func TestDeploymentActions(t *testing.T) {
	_, c := startServer(t, longTTL(testConfig(t)))
	registerBigNodes(t, c, 2)
	startFakeAgents(t, c, "web")
	u := &api.UpdateStrategy{MaxParallel: 1, MinHealthyTime: structs.Duration(200 * time.Millisecond),
		HealthyDeadline: structs.Duration(20 * time.Second)}
	if _, err := c.RegisterJob(bg, rollingJob("1", 3, u)); err != nil {
		t.Fatal(err)
	}
	d1 := waitDeployment(t, c, "web", 1, api.DeploymentSuccessful)
	if _, err := c.DeploymentAction(bg, d1.ID, "pause"); !isStatus(err, 409) {
		t.Fatalf("pause of a finished deployment: %v, want 409", err)
	}
	// The dry run of a new version shows the first wave only.
	plan, err := c.PlanJob(bg, rollingJob("2", 3, u))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Update != api.PlanUpdateDestructive || plan.Replace != 1 || plan.Ignore != 2 {
		t.Fatalf("plan of a rolling update: %s, replace %d, ignore %d; want destructive, 1 and 2", plan.Update, plan.Replace, plan.Ignore)
	}
	if _, err := c.RegisterJob(bg, rollingJob("2", 3, u)); err != nil {
		t.Fatal(err)
	}
	d, _, err := c.JobDeployment(bg, "web", nil)
	if err != nil || d.JobVersion != 2 {
		t.Fatalf("deployment of version 2: %v %+v", err, d)
	}
	if _, err := c.DeploymentAction(bg, d.ID, "pause"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := liveVersions(t, c, "web"); got[2] > 1 {
		t.Fatalf("paused deployment went on: live copies by version %v", got)
	}
	if _, err := c.DeploymentAction(bg, d.ID, "resume"); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, c, "web", 2, api.DeploymentSuccessful)
	list, _, err := c.ListDeployments(bg, nil)
	if err != nil || len(list) != 2 {
		t.Fatalf("deployment list: %v, %d deployments, want 2", err, len(list))
	}
	if _, err := c.DeploymentAction(bg, d.ID, "explode"); !isStatus(err, 404) && !isStatus(err, 405) {
		t.Fatalf("unknown action: %v", err)
	}
}

// TestDeploymentLeaderChange: the leader dies mid-deployment; the new
// leader's watcher and scheduler continue it from the stored deployment.
func TestDeploymentLeaderChange(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { *c = longTTL(*c) })
	l := tc.leader()
	all := make([]string, len(tc.cfgs))
	for i, cfg := range tc.cfgs {
		all[i] = cfg.HTTPAddr
	}
	c, err := api.NewClient(api.Config{Address: strings.Join(all, ",")})
	if err != nil {
		t.Fatal(err)
	}
	lc := tc.client(l)
	tc.waitMembers(lc, 3)
	registerBigNodes(t, lc, 3)
	startFakeAgents(t, c, "web")
	u := &api.UpdateStrategy{MaxParallel: 2, MinHealthyTime: structs.Duration(700 * time.Millisecond),
		HealthyDeadline: structs.Duration(30 * time.Second), ProgressDeadline: structs.Duration(60 * time.Second)}
	retryUnavailable(t, "register v1", func() error { _, err := lc.RegisterJob(bg, rollingJob("1", 6, u)); return err })
	waitDeployment(t, lc, "web", 1, api.DeploymentSuccessful)
	retryUnavailable(t, "register v2", func() error { _, err := lc.RegisterJob(bg, rollingJob("2", 6, u)); return err })
	waitFor(t, 30*time.Second, "the first wave healthy", func() (bool, string) {
		d, _, err := lc.JobDeployment(bg, "web", nil)
		if err != nil {
			return false, err.Error()
		}
		return d.JobVersion == 2 && len(d.Healthy) >= 2 && d.Status == api.DeploymentRunning, fmt.Sprintf("%d healthy, %s", len(d.Healthy), d.Status)
	})
	tc.stop(l)
	nl := tc.leader()
	t.Logf("leader %d stopped mid-deployment; new leader %d", l, nl)
	waitDeployment(t, tc.client(nl), "web", 2, api.DeploymentSuccessful)
	if got := liveVersions(t, tc.client(nl), "web"); got[2] != 6 || len(got) != 1 {
		t.Fatalf("after the leader change: live copies by version %v, want 6 of version 2", got)
	}
}

// TestDrainInWaves: a node's copies of a job with a migrate block leave
// one at a time (max_parallel 1), each waiting for the previous
// replacement to be healthy; a job without the block moves at once.
func TestDrainInWaves(t *testing.T) {
	_, c := startServer(t, longTTL(testConfig(t)))
	registerBigNodes(t, c, 1)
	startFakeAgents(t, c, "web")
	const minHealthy = 150 * time.Millisecond
	j := mockJob("web", 4)
	j.Migrate = &api.MigrateStrategy{MaxParallel: 1, MinHealthyTime: structs.Duration(minHealthy), HealthyDeadline: structs.Duration(time.Minute)}
	if _, err := c.RegisterJob(bg, j); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "4 running copies on n1", func() (bool, string) {
		n := 0
		for _, a := range liveAllocs(t, c, "web") {
			if a.ClientStatus == structs.AllocClientRunning {
				n++
			}
		}
		return n == 4, fmt.Sprint(n)
	})
	if _, err := c.RegisterNode(bg, fakeNode("n2", 8000, 8192)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	most := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			allocs, _, err := c.JobAllocations(ctx, "web", nil)
			if err == nil {
				moving := 0
				for _, a := range allocs {
					if a.NodeID == "n2" && a.DesiredStatus == structs.AllocDesiredRun &&
						(a.ClientStatus != structs.AllocClientRunning || time.Since(time.Unix(0, a.TaskState.StartedAt)) < minHealthy) {
						moving++
					}
				}
				most = max(most, moving)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if _, err := c.DrainNodeWith(bg, "n1", &api.NodeDrainRequest{Enable: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every copy moved to n2 and running", func() (bool, string) {
		on := map[string]int{}
		for _, a := range liveAllocs(t, c, "web") {
			if a.ClientStatus == structs.AllocClientRunning {
				on[a.NodeID]++
			}
		}
		return on["n2"] == 4 && on["n1"] == 0, fmt.Sprint(on)
	})
	cancel()
	wg.Wait()
	if most != 1 {
		t.Fatalf("at most %d copies moving at once, want 1 (max_parallel 1)", most)
	}
	n, _, err := c.Node(bg, "n1", nil)
	if err != nil || !n.Drain || n.DrainDeadline == 0 {
		t.Fatalf("drained node: %v %+v", err, n)
	}
	if _, err := c.DrainNodeWith(bg, "n1", &api.NodeDrainRequest{Enable: true, Force: true, Deadline: structs.Duration(time.Minute)}); !isStatus(err, 400) {
		t.Fatalf("force with a deadline: %v, want 400", err)
	}
}
