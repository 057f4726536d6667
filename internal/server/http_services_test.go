package server

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestServiceCatalog: instances come from the allocations' state, only
// healthy ones by default, and a blocking query wakes when the answer
// changes, not on every report.
func TestServiceCatalog(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	node := fakeNode("n1", 4000, 4096)
	node.Attributes[structs.NodeAttrNetworkIP] = "10.1.2.3"
	if _, err := c.RegisterNode(bg, node); err != nil {
		t.Fatal(err)
	}
	job := mockJob("web", 2)
	job.Network = &structs.Network{Ports: []structs.Port{{Label: "http"}}}
	job.Services = []api.Service{{Name: "web", Port: "http", Tags: []string{"v1"},
		Checks: []api.Check{{Type: structs.CheckHTTP, Path: "/"}}}}
	if _, err := c.RegisterJob(bg, job); err != nil {
		t.Fatal(err)
	}
	allocs := waitLive(t, c, "web", 2)
	report := func(a *api.Allocation, healthy bool, restarts int) {
		t.Helper()
		st := structs.CheckCritical
		if healthy {
			st = structs.CheckPassing
		}
		h := &api.AllocHealth{Healthy: healthy, Time: 1, Checks: []api.CheckStatus{{Name: "web-http-0", Status: st, Time: 1}}}
		if _, err := c.UpdateAllocations(bg, "n1", []*api.AllocClientUpdate{{ID: a.ID, ClientStatus: structs.AllocClientRunning,
			TaskState: api.TaskState{State: structs.TaskStateRunning, Restarts: restarts}, Health: h}}); err != nil {
			t.Fatal(err)
		}
	}
	report(allocs[0], true, 0)
	report(allocs[1], false, 0)

	ins, meta, err := c.Service(bg, "web", nil, nil)
	if err != nil || len(ins) != 1 || ins[0].AllocID != allocs[0].ID || ins[0].Address != "10.1.2.3" || ins[0].Port == 0 || !ins[0].Healthy {
		t.Fatalf("healthy instances = %+v, %v", ins, err)
	}
	if a, _, _ := c.Allocation(bg, allocs[0].ID, nil); a.Health == nil || !a.Health.Healthy {
		t.Fatalf("allocation health = %+v", a.Health)
	}
	all, _, err := c.Service(bg, "web", &api.ServiceQuery{All: true}, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("all instances = %+v, %v", all, err)
	}
	if tagged, _, _ := c.Service(bg, "web", &api.ServiceQuery{Tag: "v2"}, nil); len(tagged) != 0 {
		t.Fatalf("tag v2 matched %+v", tagged)
	}
	list, _, err := c.Services(bg, nil)
	if err != nil || len(list) != 1 || list[0].Instances != 2 || list[0].Healthy != 1 || list[0].Tags[0] != "v1" {
		t.Fatalf("services = %+v, %v", list, err)
	}

	// A report that changes nothing the catalog shows does not wake a watcher.
	type result struct {
		ins []api.ServiceInstance
		err error
	}
	done := make(chan result, 1)
	go func() {
		ins, _, err := c.Service(bg, "web", nil, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		done <- result{ins, err}
	}()
	time.Sleep(100 * time.Millisecond)
	report(allocs[0], true, 1) // a restart count, same health
	select {
	case r := <-done:
		t.Fatalf("woke without a catalog change: %+v %v", r.ins, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	report(allocs[1], true, 0)
	select {
	case r := <-done:
		if r.err != nil || len(r.ins) != 2 {
			t.Fatalf("after the change: %+v %v", r.ins, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not wake when a copy turned healthy")
	}
	cat, _, err := c.Catalog(context.Background(), nil)
	if err != nil || len(cat) != 2 {
		t.Fatalf("catalog = %+v, %v", cat, err)
	}
	if _, _, err := c.Service(bg, "Bad_Name", nil, nil); !isStatus(err, 400) {
		t.Fatalf("bad name: %v", err)
	}
}
