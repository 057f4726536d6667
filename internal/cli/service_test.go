package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestServiceViews(t *testing.T) {
	f := newFakeServer(t)
	f.serve("GET /v1/services", []*api.ServiceSummary{{Name: "web", Namespace: "default", Tags: []string{"v1"}, Instances: 3, Healthy: 2}})
	f.serve("GET /v1/service/web", []api.ServiceInstance{
		{Service: "web", AllocID: "a0c0ffee-0000", AllocName: "web[0]", NodeName: "dev-1", Address: "10.0.0.1", Port: 20001, Healthy: true,
			Checks: []api.CheckStatus{{Name: "web-http-0", Status: structs.CheckPassing}}},
		{Service: "web", AllocID: "a1c0ffee-0000", AllocName: "web[1]", NodeName: "dev-2", Address: "fd00::2", Port: 20002},
	})
	e := newEnv(t, f.srv.URL, "")
	if err := e.ServiceList(context.Background()); err != nil {
		t.Fatal(err)
	}
	containsInOrder(t, e.out.String(), "NAME", "HEALTHY", "web", "default", "2/3", "v1")
	e.out.Reset()
	if err := e.ServiceInfo(context.Background(), "web", ServiceInfoOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	containsInOrder(t, e.out.String(), "a0c0ffee", "web[0]", "dev-1", "10.0.0.1:20001", "healthy", "web-http-0=passing",
		"a1c0ffee", "[fd00::2]:20002", "unhealthy", "-")
}

func TestAllocHealthViews(t *testing.T) {
	f := newFakeServer(t)
	a := testAlloc("web", 0, "running")
	a.Health = &api.AllocHealth{Healthy: false, Time: ago(10 * time.Second), Checks: []api.CheckStatus{
		{Name: "web-http-0", Status: structs.CheckCritical, Output: "HTTP GET http://x/: 500\x1b[31m", Time: ago(10 * time.Second)}}}
	f.serve("GET /v1/allocation/{id}", a)
	job := testJob("web", structs.JobTypeService, 1)
	f.statuses = []*api.JobStatusResponse{status(job, nil, a)}
	e := newEnv(t, f.srv.URL, "")
	if err := e.AllocStatus(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	containsInOrder(t, out, "Health", "unhealthy", "Checks", "web-http-0", "critical", "HTTP GET http://x/: 500")
	if strings.Contains(out, "\x1b") {
		t.Fatal("check output not sanitized")
	}
	e.out.Reset()
	if err := e.JobStatus(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	containsInOrder(t, e.out.String(), "HEALTH", "unhealthy")
}
