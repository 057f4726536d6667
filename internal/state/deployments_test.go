package state

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestDeployments(t *testing.T) {
	s := newStore(t)
	job := func(version uint64) *structs.Job {
		return &structs.Job{ID: "web", Name: "web", Namespace: "default", Count: 2, Version: version, SubmitTime: int64(version)}
	}
	dep := func(id string, version uint64) *structs.Deployment {
		return &structs.Deployment{ID: id, JobID: "web", Namespace: "default", JobVersion: version, Status: structs.DeploymentRunning}
	}
	register := func(index uint64, j *structs.Job, d *structs.Deployment) {
		t.Helper()
		must(t, s.ApplyJobWrites(index, []structs.JobWrite{{Register: &structs.JobRegisterRequest{Job: j, Deployment: d}}}))
	}
	register(10, job(1), dep("d1", 1))
	if d := s.Snapshot().LatestDeployment("web"); d == nil || d.ID != "d1" || d.CreateIndex != 10 {
		t.Fatalf("latest after register: %+v", d)
	}
	// Successful: the version becomes stable in the job and its history.
	ok := dep("d1", 1)
	ok.Status = structs.DeploymentSuccessful
	must(t, s.UpsertDeployments(11, []*structs.Deployment{ok}))
	snap := s.Snapshot()
	if !snap.JobByID("web").Stable || !snap.JobVersion("web", 1).Stable {
		t.Fatal("successful deployment did not mark version 1 stable")
	}
	if got := snap.TableIndex(TableDeployments); got != 11 {
		t.Fatalf("deployments index %d, want 11", got)
	}
	// A new version cancels the running deployment of the previous one.
	register(12, job(2), dep("d2", 2))
	register(13, job(3), dep("d3", 3))
	snap = s.Snapshot()
	if d := snap.DeploymentByID(nil, "d2"); d.Status != structs.DeploymentCancelled || d.ModifyIndex != 13 {
		t.Fatalf("d2 after version 3: %+v", d)
	}
	if d := snap.LatestDeployment("web"); d.ID != "d3" || d.Status != structs.DeploymentRunning {
		t.Fatalf("latest: %+v", d)
	}
	if d, err := snap.DeploymentByPrefix(nil, "d"); err == nil || d != nil {
		t.Fatalf("ambiguous prefix: %v %v", d, err)
	}
	// Stop cancels; snapshots restore deployments.
	must(t, s.StopJob(14, "web", 99))
	snap = s.Snapshot()
	if d := snap.DeploymentByID(nil, "d3"); d.Status != structs.DeploymentCancelled || d.StatusDescription != "job stopped" {
		t.Fatalf("d3 after stop: %+v", d)
	}
	var buf bytes.Buffer
	must(t, snap.Persist(&buf))
	s2 := newStore(t)
	must(t, s2.Restore(&buf))
	if got := len(s2.Snapshot().Deployments(nil)); got != 3 {
		t.Fatalf("restored %d deployments, want 3", got)
	}
	// Bounded per job: the oldest finished ones go.
	for i := range MaxDeploymentsPerJob + 3 {
		v := uint64(4 + i)
		register(uint64(20+i), job(v), dep(fmt.Sprintf("e%d", i), v))
	}
	if got := len(s.Snapshot().DeploymentsByJob(nil, "web")); got != MaxDeploymentsPerJob {
		t.Fatalf("%d deployments kept, want %d", got, MaxDeploymentsPerJob)
	}
	// Purge drops them.
	must(t, s.PurgeJob(40, "web"))
	if got := len(s.Snapshot().Deployments(nil)); got != 0 {
		t.Fatalf("%d deployments after purge", got)
	}
}
