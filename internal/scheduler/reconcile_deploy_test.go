package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// summary renders a reconciliation as "stop a@reason ... place idx:reason"
// sorted, for table comparisons.
func summary(r *Reconciliation) string {
	var out []string
	for _, s := range r.Stops {
		out = append(out, "stop "+s.AllocID+"@"+s.Description)
	}
	for _, p := range r.Place {
		out = append(out, fmt.Sprintf("place %d:%s", p.Index, p.Reason))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func TestReconcileRolling(t *testing.T) {
	nodes := map[string]*structs.Node{
		"n1":    {ID: "n1", Status: structs.NodeStatusReady},
		"drain": {ID: "drain", Status: structs.NodeStatusReady, Drain: true},
		"past":  {ID: "past", Status: structs.NodeStatusReady, Drain: true, DrainDeadline: now0.Add(-time.Second).UnixNano()},
		"later": {ID: "later", Status: structs.NodeStatusReady, Drain: true, DrainDeadline: now0.Add(time.Hour).UnixNano()},
	}
	job := func(count int, version uint64, u *structs.UpdateStrategy) *structs.Job {
		j := &structs.Job{ID: "web", Name: "web", Count: count, Version: version, Driver: "mock",
			Resources: structs.Resources{CPU: 100, MemoryMB: 100}, Update: u}
		j.Canonicalize()
		return j
	}
	upd := func(maxPar, canary int) *structs.UpdateStrategy {
		return &structs.UpdateStrategy{MaxParallel: maxPar, Canary: canary, MinHealthyTime: structs.Duration(time.Second)}
	}
	dep := func(version uint64, status string, tweaks ...func(*structs.Deployment)) *structs.Deployment {
		d := &structs.Deployment{ID: "d", JobID: "web", JobVersion: version, Status: status}
		for _, f := range tweaks {
			f(d)
		}
		return d
	}
	healthy := func(ids ...string) func(*structs.Deployment) {
		return func(d *structs.Deployment) { d.Healthy = append(d.Healthy, ids...); slices.Sort(d.Healthy) }
	}
	canaries := func(n int, promoted bool) func(*structs.Deployment) {
		return func(d *structs.Deployment) { d.DesiredCanaries, d.Promoted = n, promoted }
	}
	running := func(a *structs.Allocation) { a.ClientStatus = structs.AllocClientRunning }
	// six copies of version 1 on n1, and extra allocations
	six := func(extra ...*structs.Allocation) []*structs.Allocation {
		var out []*structs.Allocation
		for i := range 6 {
			out = append(out, ra(fmt.Sprintf("old%d", i), i, "n1", 1, run, structs.AllocClientRunning))
		}
		return append(out, extra...)
	}
	newAt := func(id string, idx int) *structs.Allocation {
		return ra(id, idx, "n1", 2, run, structs.AllocClientPending, func(a *structs.Allocation) { a.CreateIndex = 100 })
	}
	stopped := func(id string, idx int) *structs.Allocation {
		return ra(id, idx, "n1", 1, stop, structs.AllocClientComplete)
	}
	migrate := func(j *structs.Job) *structs.Job {
		j.Update = nil
		j.Migrate = &structs.MigrateStrategy{MaxParallel: 1, MinHealthyTime: structs.Duration(time.Second), HealthyDeadline: structs.Duration(time.Minute)}
		return j
	}

	cases := []struct {
		name    string
		job     *structs.Job
		allocs  []*structs.Allocation
		dep     *structs.Deployment
		tracked bool
		want    string
		retry   bool
	}{
		{"first wave: max_parallel copies, in index order", job(6, 2, upd(2, 0)), six(), dep(2, structs.DeploymentRunning), true,
			"place 0:replacement, place 1:replacement, stop old0@job updated, stop old1@job updated", false},
		{"wave in flight: nothing more", job(6, 2, upd(2, 0)),
			append(six()[2:], stopped("old0", 0), stopped("old1", 1), newAt("new0", 0), newAt("new1", 1)), dep(2, structs.DeploymentRunning), true,
			"", false},
		{"one of the wave healthy: one more", job(6, 2, upd(2, 0)),
			append(six()[2:], newAt("new0", 0), newAt("new1", 1)), dep(2, structs.DeploymentRunning, healthy("new0")), true,
			"place 2:replacement, stop old2@job updated", false},
		{"no deployment of this version yet: wait", job(6, 2, upd(2, 0)), six(), dep(1, structs.DeploymentSuccessful), true, "", false},
		{"paused: wait", job(6, 2, upd(2, 0)), six(), dep(2, structs.DeploymentPaused), true, "", false},
		{"failed: old copies kept", job(6, 2, upd(2, 0)), six(), dep(2, structs.DeploymentFailed), true, "", false},
		{"a view without deployments: at once", job(2, 2, upd(1, 0)), six()[:2], nil, false,
			"place 0:replacement, place 1:replacement, stop old0@job updated, stop old1@job updated", false},
		{"canary placed beside the old copy", job(6, 2, upd(2, 1)), six(), dep(2, structs.DeploymentRunning, canaries(1, false)), true,
			"place 0:canary", false},
		{"canary waits for promotion", job(6, 2, upd(2, 1)), six(newAt("c0", 0)), dep(2, structs.DeploymentRunning, canaries(1, false), healthy("c0")), true,
			"", false},
		{"failed canary not placed again", job(6, 2, upd(2, 1)),
			six(ra("c0", 0, "n1", 2, run, structs.AllocClientFailed, func(a *structs.Allocation) { a.CreateIndex = 100 })),
			dep(2, structs.DeploymentRunning, canaries(1, false)), true, "", false},
		{"promoted: old copy beside the canary stopped, the rest roll", job(6, 2, upd(2, 1)), six(newAt("c0", 0)),
			dep(2, structs.DeploymentRunning, canaries(1, true), healthy("c0")), true,
			"place 1:replacement, place 2:replacement, stop old0@job updated, stop old1@job updated, stop old2@job updated", false},
		{"failed deployment: canary stopped, old copies untouched", job(6, 2, upd(2, 1)), six(func() *structs.Allocation { a := newAt("c0", 0); running(a); return a }()),
			dep(2, structs.DeploymentFailed, canaries(1, false)), true, "stop c0@" + DescCanaryFailed, false},
		{"an older version's failed copy is replaced at once", job(2, 2, upd(2, 0)),
			[]*structs.Allocation{ra("old0", 0, "n1", 1, run, structs.AllocClientRunning), ra("f1", 1, "n1", 1, run, structs.AllocClientFailed)},
			dep(2, structs.DeploymentRunning), true, "place 0:replacement, place 1:replacement, stop old0@job updated", false},
		{"copies placed for empty indexes use the budget", job(3, 2, upd(1, 0)),
			[]*structs.Allocation{ra("old0", 0, "n1", 1, run, structs.AllocClientRunning), ra("old1", 1, "n1", 1, run, structs.AllocClientRunning)},
			dep(2, structs.DeploymentRunning), true, "place 2:new", false},
		{"drain: one at a time (migrate)", migrate(job(3, 1, nil)),
			[]*structs.Allocation{ra("a0", 0, "drain", 1, run, structs.AllocClientRunning), ra("a1", 1, "drain", 1, run, structs.AllocClientRunning), ra("a2", 2, "drain", 1, run, structs.AllocClientRunning)},
			nil, true, "place 0:replacement, stop a0@node drained", true},
		{"drain: waits while a replacement is not healthy", migrate(job(2, 1, nil)),
			[]*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientRunning, func(a *structs.Allocation) { a.TaskState.StartedAt = now0.UnixNano() }), ra("a1", 1, "later", 1, run, structs.AllocClientRunning)},
			nil, true, "", true},
		{"drain: past the deadline all at once", migrate(job(2, 1, nil)),
			[]*structs.Allocation{ra("a0", 0, "past", 1, run, structs.AllocClientRunning), ra("a1", 1, "past", 1, run, structs.AllocClientRunning)},
			nil, true, "place 0:replacement, place 1:replacement, stop a0@node drained, stop a1@node drained", false},
		{"drain without migrate or update block: at once (Reconcile)", job(2, 1, nil),
			[]*structs.Allocation{ra("a0", 0, "drain", 1, run, structs.AllocClientRunning), ra("a1", 1, "drain", 1, run, structs.AllocClientRunning)},
			nil, true, "place 0:replacement, place 1:replacement, stop a0@node drained, stop a1@node drained", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r *Reconciliation
			if tc.job.Update == nil && tc.job.Migrate == nil {
				r = Reconcile(tc.job, tc.allocs, func(id string) *structs.Node { return nodes[id] }, now0)
			} else {
				r = ReconcileRolling(tc.job, tc.allocs, tc.dep, tc.tracked, func(id string) *structs.Node { return nodes[id] }, now0)
			}
			if got := summary(r); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if (!r.RetryAt.IsZero()) != tc.retry {
				t.Errorf("RetryAt %v, want set=%v", r.RetryAt, tc.retry)
			}
		})
	}
}

// TestReconcileJobPlainPath: a job with no update or migrate block takes
// Reconcile's path whatever the view keeps.
func TestReconcileJobPlainPath(t *testing.T) {
	j := &structs.Job{ID: "web", Name: "web", Count: 2, Version: 2, Driver: "mock", Resources: structs.Resources{CPU: 1, MemoryMB: 1}}
	j.Canonicalize()
	allocs := []*structs.Allocation{ra("a", 0, "n1", 1, run, structs.AllocClientRunning), ra("b", 1, "n1", 1, run, structs.AllocClientRunning)}
	st := &depState{}
	got := summary(ReconcileJob(st, j, allocs, now0))
	if want := "place 0:replacement, place 1:replacement, stop a@job updated, stop b@job updated"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if st.reads != 0 {
		t.Fatalf("deployment read %d times for a job without an update block", st.reads)
	}
	j.Update = &structs.UpdateStrategy{MaxParallel: 1}
	j.Canonicalize()
	if got := summary(ReconcileJob(st, j, allocs, now0)); got != "" || st.reads != 1 {
		t.Fatalf("rolling job without a deployment: got %q after %d reads, want nothing after 1", got, st.reads)
	}
}

type depState struct {
	State
	reads int
}

func (s *depState) NodeByID(id string) *structs.Node {
	return &structs.Node{ID: id, Status: structs.NodeStatusReady}
}

func (s *depState) LatestDeployment(string) *structs.Deployment { s.reads++; return nil }
