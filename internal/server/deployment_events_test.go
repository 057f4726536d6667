package server

import (
	"testing"

	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestDeploymentEvents: a registration that starts a deployment, the
// watcher's update and a new version (which cancels the running one) give
// Deployment events keyed by the deployment's ID.
func TestDeploymentEvents(t *testing.T) {
	f, b := newEventFSM(t)
	sub, err := b.Subscribe(stream.SubscribeRequest{Filter: stream.Filter{Topics: []stream.Topic{stream.TopicDeployment}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	job := func(v uint64) *structs.Job {
		j := &structs.Job{Name: "web", Count: 1, Driver: "mock", Resources: structs.Resources{CPU: 1, MemoryMB: 1},
			Update: &structs.UpdateStrategy{MaxParallel: 1}, Version: v}
		j.Canonicalize()
		return j
	}
	dep := func(id string, v uint64, status string) *structs.Deployment {
		return &structs.Deployment{ID: id, JobID: "web", Namespace: "default", JobVersion: v, Status: status}
	}
	steps := []struct {
		t   structs.MessageType
		req any
	}{
		{structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job(1), Deployment: dep("d1", 1, structs.DeploymentRunning)}},
		{structs.DeploymentUpsertRequestType, &structs.DeploymentUpsertRequest{Deployments: []*structs.Deployment{dep("d1", 1, structs.DeploymentPaused)}}},
		{structs.JobBatchRequestType, &structs.JobBatchRequest{Writes: []structs.JobWrite{{Register: &structs.JobRegisterRequest{Job: job(2), Deployment: dep("d2", 2, structs.DeploymentRunning)}}}}},
	}
	for i, s := range steps {
		if err, ok := f.Apply(entry(t, uint64(i+1), s.t, s.req)).(error); ok {
			t.Fatal(err)
		}
	}
	got := readEvents(t, sub, 6)
	sortWithinIndex(got)
	want := []string{
		"1 Deployment DeploymentCreated d1", "1 Deployment DeploymentStarted web",
		"2 Deployment DeploymentStatusUpdate d1",
		"3 Deployment DeploymentCreated d2", "3 Deployment DeploymentStarted web", "3 Deployment DeploymentStatusUpdate d1",
	}
	sortWithinIndex(want)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events:\n%v\nwant:\n%v", got, want)
		}
	}
	if d := f.state.Snapshot().DeploymentByID(nil, "d1"); d.Status != structs.DeploymentCancelled {
		t.Fatalf("d1 after version 2: %s", d.Status)
	}
}
