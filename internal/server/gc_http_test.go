package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestSystemGCWaitsForEveryServer: while a server of the cluster cannot
// apply garbage collection entries, nothing is collected and the API says
// why (409).
func TestSystemGCWaitsForEveryServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.raftProtocol = structs.RaftProtocolBinary // a build before garbage collection
	_, c := startServer(t, cfg)
	_, err := c.SystemGC(bg)
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || !strings.Contains(ae.Error(), "protocol 3") {
		t.Fatalf("err %v, want a 409 naming protocol 3", err)
	}
}

// TestJobStatusShowsPendingReschedule: a failed copy waiting for its
// delay is listed with the attempt its replacement will be and when, from
// the server's clock.
func TestJobStatusShowsPendingReschedule(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	waitFor(t, 10*time.Second, "leadership", func() (bool, string) { return s.Leader() && s.leaderReady.Load(), "not leader" })
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + s.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterNode(bg, fakeNode("n1", 2000, 2048)); err != nil {
		t.Fatal(err)
	}
	job := mockJob("web", 1)
	job.Reschedule = api.ReschedulePolicy{Unlimited: true, Delay: api.Duration(10 * time.Minute),
		DelayFunction: structs.DelayExponential, MaxDelay: api.Duration(time.Hour)}
	if _, err := c.RegisterJob(bg, job); err != nil {
		t.Fatal(err)
	}
	live := waitLive(t, c, "web", 1)
	if _, err := c.UpdateAllocations(bg, "n1", []*api.AllocClientUpdate{{ID: live[0].ID, ClientStatus: structs.AllocClientFailed}}); err != nil {
		t.Fatal(err)
	}
	var st *api.JobStatusResponse
	waitFor(t, 10*time.Second, "the failure", func() (bool, string) {
		st, _, err = c.JobStatus(bg, "web", nil)
		return err == nil && len(st.Reschedules) == 1, fmt.Sprint(err)
	})
	want := api.PendingReschedule{Index: 0, Name: "web[0]", PreviousAllocation: live[0].ID, Attempt: 1,
		Delay: api.Duration(10 * time.Minute), Time: now.Add(10 * time.Minute).UnixNano()}
	if *st.Reschedules[0] != want {
		t.Fatalf("pending %+v, want %+v", *st.Reschedules[0], want)
	}
}

// TestLeaderCollectsPeriodically: the leader collects on its own every
// GCInterval, with the thresholds of its config.
func TestLeaderCollectsPeriodically(t *testing.T) {
	cfg := testConfig(t)
	cfg.GCInterval, cfg.GCAllocThreshold, cfg.GCMaxTerminalAllocsPerJob = 20*time.Millisecond, 0, 0
	s, c := startServer(t, cfg)
	if _, err := c.RegisterNode(bg, fakeNode("n1", 2000, 2048)); err != nil {
		t.Fatal(err)
	}
	job := mockJob("web", 1)
	job.Reschedule = api.ReschedulePolicy{Unlimited: true, Delay: api.Duration(time.Millisecond)}
	if _, err := c.RegisterJob(bg, job); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		live := waitLive(t, c, "web", 1)
		if _, err := c.UpdateAllocations(bg, "n1", []*api.AllocClientUpdate{{ID: live[0].ID, ClientStatus: structs.AllocClientFailed}}); err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	waitFor(t, 20*time.Second, "the failed copies collected", func() (bool, string) {
		allocs, _, err := c.JobAllocations(bg, "web", nil)
		if err != nil {
			return false, err.Error()
		}
		// The counter moves when the leader's GC entry returns, just
		// after the FSM has deleted the allocations: wait for both.
		got := gatherCounter(t, s, "gantry_gc_allocations_total")
		return len(allocs) <= 2 && got >= 4, fmt.Sprintf("%d allocations, gantry_gc_allocations_total %v (want at least 4)", len(allocs), got)
	})
}

// gatherCounter reads a counter of the server's registry.
func gatherCounter(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
