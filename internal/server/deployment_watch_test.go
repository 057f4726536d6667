package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestDecideDeployment drives the watcher's rule on a virtual clock.
func TestDecideDeployment(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	strategy := structs.UpdateStrategy{MaxParallel: 2, MinHealthyTime: structs.Duration(10 * time.Second),
		HealthyDeadline: structs.Duration(time.Minute), ProgressDeadline: structs.Duration(5 * time.Minute)}
	job := &structs.Job{ID: "web", Name: "web", Count: 2, Version: 2}
	dep := func(tweaks ...func(*structs.Deployment)) *structs.Deployment {
		d := &structs.Deployment{ID: "d1", JobID: "web", JobVersion: 2, Strategy: strategy, Status: structs.DeploymentRunning,
			CreateIndex: 10, RequireProgressBy: t0.Add(5 * time.Minute).UnixNano()}
		for _, f := range tweaks {
			f(d)
		}
		return d
	}
	alloc := func(id string, idx int, version uint64, client string, started time.Time, tweaks ...func(*structs.Allocation)) *structs.Allocation {
		a := &structs.Allocation{ID: id, JobID: "web", Index: idx, JobVersion: version, CreateIndex: 20,
			DesiredStatus: structs.AllocDesiredRun, ClientStatus: client, CreateTime: t0.UnixNano()}
		if !started.IsZero() {
			a.TaskState.StartedAt = started.UnixNano()
		}
		for _, f := range tweaks {
			f(a)
		}
		return a
	}
	running := structs.AllocClientRunning
	healthyIDs := func(ids ...string) func(*structs.Deployment) {
		return func(d *structs.Deployment) { d.Healthy = ids }
	}

	t.Run("pending until min_healthy_time, then healthy", func(t *testing.T) {
		allocs := []*structs.Allocation{alloc("a", 0, 2, running, t0), alloc("b", 1, 2, structs.AllocClientPending, time.Time{})}
		d := decideDeployment(dep(), job, allocs, t0.Add(5*time.Second))
		if d.Update != nil || !d.Next.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("at 5s: update %+v next %v, want none and 10s", d.Update, d.Next)
		}
		d = decideDeployment(dep(), job, allocs, t0.Add(10*time.Second))
		if d.Update == nil || !d.Update.IsHealthy("a") || d.Update.IsHealthy("b") || d.Update.Status != structs.DeploymentRunning {
			t.Fatalf("at 10s: %+v", d.Update)
		}
		if d.Update.RequireProgressBy != t0.Add(10*time.Second+5*time.Minute).UnixNano() {
			t.Fatalf("progress deadline not moved: %v", time.Unix(0, d.Update.RequireProgressBy))
		}
	})
	t.Run("every index healthy and no old copy: successful", func(t *testing.T) {
		allocs := []*structs.Allocation{alloc("a", 0, 2, running, t0), alloc("b", 1, 2, running, t0)}
		d := decideDeployment(dep(healthyIDs("a")), job, allocs, t0.Add(time.Minute-time.Second))
		if d.Update == nil || d.Update.Status != structs.DeploymentSuccessful {
			t.Fatalf("%+v", d.Update)
		}
	})
	t.Run("an old copy left: not done", func(t *testing.T) {
		allocs := []*structs.Allocation{alloc("a", 0, 2, running, t0), alloc("b", 1, 2, running, t0), alloc("o", 1, 1, running, t0)}
		d := decideDeployment(dep(healthyIDs("a", "b")), job, allocs, t0.Add(20*time.Second))
		if d.Update != nil {
			t.Fatalf("%+v", d.Update)
		}
	})
	t.Run("restart or failure: unhealthy, failed, auto_revert", func(t *testing.T) {
		restarted := alloc("a", 0, 2, running, t0, func(a *structs.Allocation) { a.TaskState.Restarts = 1 })
		d := decideDeployment(dep(func(d *structs.Deployment) { d.Strategy.AutoRevert = true }), job, []*structs.Allocation{restarted}, t0.Add(time.Second))
		if d.Update == nil || d.Update.Status != structs.DeploymentFailed || !d.Revert || !strings.Contains(d.Update.StatusDescription, "restarted") {
			t.Fatalf("%+v revert=%v", d.Update, d.Revert)
		}
	})
	t.Run("healthy_deadline passed", func(t *testing.T) {
		d := decideDeployment(dep(), job, []*structs.Allocation{alloc("a", 0, 2, structs.AllocClientPending, time.Time{})}, t0.Add(time.Minute))
		if d.Update == nil || d.Update.Status != structs.DeploymentFailed || !strings.Contains(d.Update.StatusDescription, "healthy_deadline") || d.Revert {
			t.Fatalf("%+v", d.Update)
		}
	})
	t.Run("progress_deadline passed", func(t *testing.T) {
		d := decideDeployment(dep(func(d *structs.Deployment) { d.RequireProgressBy = t0.UnixNano() }), job, nil, t0)
		if d.Update == nil || d.Update.Status != structs.DeploymentFailed || !strings.Contains(d.Update.StatusDescription, "progress_deadline") {
			t.Fatalf("%+v", d.Update)
		}
	})
	t.Run("agent health reports decide when present", func(t *testing.T) {
		unhealthyReport := alloc("a", 0, 2, running, t0, func(a *structs.Allocation) { a.Health = &structs.AllocHealth{Healthy: false, Time: t0.UnixNano()} })
		if d := decideDeployment(dep(), job, []*structs.Allocation{unhealthyReport}, t0.Add(30*time.Second)); d.Update != nil {
			t.Fatalf("a copy reported unhealthy counted healthy: %+v", d.Update)
		}
		healthyLater := alloc("a", 0, 2, running, t0, func(a *structs.Allocation) {
			a.Health = &structs.AllocHealth{Healthy: true, Time: t0.Add(20 * time.Second).UnixNano()}
		})
		if d := decideDeployment(dep(), job, []*structs.Allocation{healthyLater}, t0.Add(25*time.Second)); d.Update != nil {
			t.Fatalf("healthy for 5s of a 10s min_healthy_time counted: %+v", d.Update)
		}
		if d := decideDeployment(dep(), job, []*structs.Allocation{healthyLater}, t0.Add(30*time.Second)); d.Update == nil || !d.Update.IsHealthy("a") {
			t.Fatalf("healthy for min_healthy_time not counted: %+v", d.Update)
		}
	})
	t.Run("canaries recorded, promoted with auto_promote", func(t *testing.T) {
		canary := func(d *structs.Deployment) { d.DesiredCanaries = 1 }
		allocs := []*structs.Allocation{alloc("o0", 0, 1, running, t0), alloc("o1", 1, 1, running, t0), alloc("c", 0, 2, running, t0)}
		d := decideDeployment(dep(canary), job, allocs, t0.Add(11*time.Second))
		if d.Update == nil || len(d.Update.Canaries) != 1 || !d.Update.IsHealthy("c") || d.Update.Promoted {
			t.Fatalf("%+v", d.Update)
		}
		if !strings.Contains(d.Update.StatusDescription, "promote") {
			t.Fatalf("description %q does not say to promote", d.Update.StatusDescription)
		}
		auto := func(d *structs.Deployment) { d.Strategy.AutoPromote = true }
		d = decideDeployment(dep(canary, auto), job, allocs, t0.Add(11*time.Second))
		if d.Update == nil || !d.Update.Promoted {
			t.Fatalf("auto_promote: %+v", d.Update)
		}
		// Waiting for a person: the progress deadline does not fail it.
		waiting := dep(canary, func(d *structs.Deployment) {
			d.Canaries, d.Healthy, d.RequireProgressBy = []string{"c"}, []string{"c"}, t0.UnixNano()
		})
		if d = decideDeployment(waiting, job, allocs, t0.Add(time.Hour)); d.Update != nil && d.Update.Status == structs.DeploymentFailed {
			t.Fatalf("failed while waiting for promotion: %+v", d.Update)
		}
	})
	t.Run("job changed: cancelled", func(t *testing.T) {
		j3 := *job
		j3.Version = 3
		if d := decideDeployment(dep(), &j3, nil, t0); d.Update == nil || d.Update.Status != structs.DeploymentCancelled {
			t.Fatalf("%+v", d.Update)
		}
	})
}

// TestApplyDeploymentAction: what each action allows.
func TestApplyDeploymentAction(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	run := &structs.Deployment{ID: "d1", Status: structs.DeploymentRunning, Strategy: structs.UpdateStrategy{ProgressDeadline: structs.Duration(time.Minute)}}
	paused, _ := applyDeploymentAction(run, deployPause, now)
	if paused.Status != structs.DeploymentPaused {
		t.Fatalf("pause: %+v", paused)
	}
	if _, err := applyDeploymentAction(paused, deployPause, now); err == nil {
		t.Fatal("pause of a paused deployment accepted")
	}
	resumed, _ := applyDeploymentAction(paused, deployResume, now)
	if resumed.Status != structs.DeploymentRunning || resumed.RequireProgressBy != now.Add(time.Minute).UnixNano() {
		t.Fatalf("resume: %+v", resumed)
	}
	if _, err := applyDeploymentAction(run, deployPromote, now); err == nil {
		t.Fatal("promote without canaries accepted")
	}
	canaries := run.Copy()
	canaries.DesiredCanaries, canaries.Canaries = 1, []string{"c"}
	if _, err := applyDeploymentAction(canaries, deployPromote, now); err == nil || !strings.Contains(err.Error(), "0 of 1 canaries healthy") {
		t.Fatalf("promote of an unhealthy canary: %v", err)
	}
	canaries.Healthy = []string{"c"}
	if p, err := applyDeploymentAction(canaries, deployPromote, now); err != nil || !p.Promoted {
		t.Fatalf("promote: %v %+v", err, p)
	}
	failed, _ := applyDeploymentAction(run, deployFail, now)
	if _, err := applyDeploymentAction(failed, deployResume, now); err == nil {
		t.Fatal("resume of a failed deployment accepted")
	}
}
