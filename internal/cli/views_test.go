package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// viewServer serves one fixed cluster: two nodes, the web job with three
// allocations (one of them failed), and a scheduler.
func viewServer(t *testing.T) *fakeServer {
	f := newFakeServer(t)
	job := testJob("web", structs.JobTypeService, 3)
	job.Constraints = []api.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
	job.Placement = "spread"
	job.Restart = api.RestartPolicy{Attempts: 2, Interval: api.Duration(30 * time.Minute), Delay: api.Duration(15 * time.Second),
		DelayFunction: structs.DelayConstant}
	job.Reschedule = api.ReschedulePolicy{Unlimited: true, Delay: api.Duration(30 * time.Second),
		DelayFunction: structs.DelayExponential, MaxDelay: api.Duration(time.Hour)}
	a0 := testAlloc("web", 0, "running")
	a0.NodeID, a0.NodeName = "node1aaaa-1111", "dev-1"
	a0.TaskState = api.TaskState{State: "running", Restarts: 1, StartedAt: ago(50 * time.Second), PID: 4242,
		Events: []api.TaskEvent{
			{Time: ago(61 * time.Second), Type: "Received"},
			{Time: ago(60 * time.Second), Type: "Started", Message: "pid 4100"},
			{Time: ago(51 * time.Second), Type: "Restarting", Message: "exit code 1; restart 1 of 2 in 1s"},
			{Time: ago(50 * time.Second), Type: "Started", Message: "pid 4242"},
		}}
	a1 := testAlloc("web", 1, "failed")
	a1.NodeID, a1.NodeName = "node2bbbb-2222", "dev-2"
	a1.TaskState = api.TaskState{State: "dead", ExitCode: 2, Failed: true, Restarts: 2, StartedAt: ago(3 * time.Minute)}
	a2 := testAlloc("web", 2, "pending")
	a2.NodeID, a2.NodeName = "node1aaaa-1111", "dev-1"
	a2.TaskState = api.TaskState{State: "pending", Restarts: 1, Events: []api.TaskEvent{
		{Time: ago(70 * time.Second), Type: "Received"},
		{Time: ago(69 * time.Second), Type: "Started", Message: "pid 4300"},
		{Time: ago(5 * time.Second), Type: "Terminated", Message: "exit code 1"},
		{Time: ago(5 * time.Second), Type: "Restarting", Message: "restart 1 of 2 within 30m0s, in 15s (exit code 1)"},
	}}
	a1.Job = job // embedded jobs must not leak into status views
	allocs := []*api.Allocation{a0, a1, a2}
	st := status(job, &api.PlacementFailure{Unplaced: 1, NodesEvaluated: 2, NodesFiltered: map[string]int{"constraint zone = a": 1}}, allocs...)
	st.Reschedules = []*api.PendingReschedule{{Index: 1, Name: "web[1]", PreviousAllocation: a1.ID, Attempt: 4,
		Delay: api.Duration(4 * time.Minute), Time: now.Add(8 * time.Second).UnixNano()}}
	f.statuses = []*api.JobStatusResponse{st}

	nodes := []*api.Node{
		{ID: "node2bbbb-2222", Name: "dev-2", Status: structs.NodeStatusReady, Drain: true,
			Labels: map[string]string{"zone": "b"}, Capacity: api.Resources{CPU: 666, MemoryMB: 2048}},
		{ID: "node1aaaa-1111", Name: "dev-1", Status: structs.NodeStatusReady, HTTPAddr: "127.0.0.1:4700",
			Labels: map[string]string{"zone": "a", "rack": "r1"}, Attributes: map[string]string{"os": "linux"},
			Capacity: api.Resources{CPU: 666, MemoryMB: 2048}, StatusUpdatedAt: ago(3 * time.Hour)},
		{ID: "node3cccc-3333", Name: "dev-3", Status: structs.NodeStatusReady, Ineligible: "data disk full (42 MiB free, minimum 100 MiB)",
			Labels: map[string]string{"zone": "c"}, Capacity: api.Resources{CPU: 666, MemoryMB: 2048}},
	}
	f.serve("GET /v1/nodes", nodes)
	f.serve("GET /v1/allocations", allocs)
	f.serve("GET /v1/node/dev-1", nodes[1])
	f.serve("GET /v1/node/node1aaaa-1111/allocations", []*api.Allocation{a0, a2})
	f.serve("GET /v1/allocation/a0c0", a0)
	f.serve("GET /v1/jobs", []*api.JobListStub{
		{ID: "web", Type: "service", Priority: 50, Count: 3, Status: "running", Version: 1,
			Summary: map[string]int{"running": 1, "failed": 1, "pending": 1}, SubmitTime: ago(2 * time.Hour)},
		{ID: "batch", Type: "batch", Priority: 70, Count: 2, Status: "dead", Stop: true, Version: 4,
			Summary: map[string]int{}, SubmitTime: ago(72 * time.Hour)},
	})
	f.serve("GET /v1/scheduler/status", &api.SchedulerStatus{Architecture: "monolithic", QueueDepth: 2,
		Placements: 1500, Evaluations: 300, BusyFraction: 0.125, LatencyP50Ms: 0.8, LatencyP99Ms: 4.25})
	return f
}

func TestTableViews(t *testing.T) {
	cases := []struct {
		name string
		run  func(e *Env) error
		want string
	}{
		{"job status", func(e *Env) error { return e.JobStatus(context.Background(), "web") }, `ID          = web
Type        = service
Priority    = 50
Count       = 3
Status      = running
Version     = 1
Driver      = exec
Resources   = 50m CPU, 32 MiB per copy
Placement   = spread
Restart     = 2 within 30m, after 15s
Reschedule  = unlimited, after 30s, doubling up to 1h
Constraints = zone = a
Submitted   = 2026-11-27T11:58:30Z (1m ago)

Summary
PENDING   RUNNING   COMPLETE   FAILED   LOST
1         1         0          1        0

Placement failure
  1 unplaced (2 nodes evaluated): 1 node excluded by constraint zone = a

Reschedules
  web[1]: next reschedule in 8s, attempt 4 (replaces a1c0ffee)

Restarting
  a2c0ffee web[2]: restart 1 of 2 within 30m0s, in 15s (exit code 1) (5s ago)

Allocations
ID         NAME     VERSION   NODE    DESIRED   STATUS    RESTARTS   EXIT   AGE
a0c0ffee   web[0]   1         dev-1   run       running   1          -      1m
a1c0ffee   web[1]   1         dev-2   run       failed    2          2      2m
a2c0ffee   web[2]   1         dev-1   run       pending   1          -      3m
`},
		{"job list", func(e *Env) error { return e.JobList(context.Background()) }, `ID      TYPE      PRIORITY   STATUS           COUNT   RUNNING   PENDING   FAILED   VERSION   SUBMITTED
batch   batch     70         dead (stopped)   2       0         0         0        4         3d
web     service   50         running          3       1         1         1        1         2h
`},
		{"node list", func(e *Env) error { return e.NodeList(context.Background()) }, `ID         NAME    STATUS   DRAIN   ELIGIBLE                                            CPU (USED/TOTAL)   MEMORY (USED/TOTAL)   ALLOCS   LABELS
node1aaa   dev-1   ready    false   true                                                100/666m           64/2048 MiB           2        rack=r1, zone=a
node2bbb   dev-2   ready    true    false                                               0/666m             0/2048 MiB            0        zone=b
node3ccc   dev-3   ready    false   no: data disk full (42 MiB free, minimum 100 MiB)   0/666m             0/2048 MiB            0        zone=c
`},
		{"node status", func(e *Env) error { return e.NodeStatus(context.Background(), "dev-1") }, `ID             = node1aaaa-1111
Name           = dev-1
Status         = ready
Drain          = false
Eligible       = true
Address        = 127.0.0.1:4700
Labels         = rack=r1, zone=a
Attributes     = os=linux
CPU            = 100/666m used (15%)
Memory         = 64/2048 MiB used (3%)
Status updated = 2026-11-27T09:00:00Z (3h ago)

Allocations
ID         NAME     VERSION   DESIRED   STATUS    RESTARTS   EXIT   AGE
a0c0ffee   web[0]   1         run       running   1          -      1m
a2c0ffee   web[2]   1         run       pending   1          -      3m
`},
		{"alloc status", func(e *Env) error { return e.AllocStatus(context.Background(), "a0c0") }, `ID        = a0c0ffee-0000-0000-0000-000000000000
Name      = web[0]
Job       = web (version 1)
Node      = dev-1 (node1aaaa-1111)
Resources = 50m CPU, 32 MiB
Priority  = 0
Desired   = run
Status    = running
Created   = 2026-11-27T11:59:00Z (1m ago)
Modified  = -

Task
State    = running
Restarts = 1
PID      = 4242
Started  = 2026-11-27T11:59:10Z (50s ago)

Recent events
TIME                   TYPE         MESSAGE
2026-11-27T11:58:59Z   Received     -
2026-11-27T11:59:00Z   Started      pid 4100
2026-11-27T11:59:09Z   Restarting   exit code 1; restart 1 of 2 in 1s
2026-11-27T11:59:10Z   Started      pid 4242
`},
		{"scheduler status", func(e *Env) error { return e.SchedulerStatus(context.Background()) }, `Architecture = monolithic
Queue depth  = 2
Evaluations  = 300
Placements   = 1500
Preemptions  = 0
Busy         = 12.5%
Latency p50  = 0.80 ms
Latency p99  = 4.25 ms
Decisions/s  = 0.0
Blocked jobs = 0
Unblocked    = 0
`},
	}
	f := viewServer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, f.srv.URL, FormatTable)
			if err := tc.run(e.Env); err != nil {
				t.Fatal(err)
			}
			if got := e.out.String(); got != tc.want {
				t.Fatalf("output:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestDataViews(t *testing.T) {
	f := viewServer(t)
	for _, format := range []string{FormatJSON, FormatYAML} {
		t.Run(format, func(t *testing.T) {
			e := newEnv(t, f.srv.URL, format)
			if err := e.JobStatus(context.Background(), "web"); err != nil {
				t.Fatal(err)
			}
			var got api.JobStatusResponse
			var err error
			if format == FormatJSON {
				err = json.Unmarshal(e.out.Bytes(), &got)
			} else {
				// YAML output uses the JSON names; read it back through JSON.
				var tree any
				if err = yaml.Unmarshal(e.out.Bytes(), &tree); err == nil {
					b, _ := json.Marshal(tree)
					err = json.Unmarshal(b, &got)
				}
				if !strings.HasPrefix(e.out.String(), "job:\n    id: web\n") {
					t.Errorf("YAML output does not start with the job in block style:\n%s", e.out.String()[:80])
				}
			}
			if err != nil {
				t.Fatalf("decoding %s output: %v\n%s", format, err, e.out.String())
			}
			if got.Job.ID != "web" || len(got.Allocations) != 3 || got.Allocations[1].TaskState.ExitCode != 2 || got.PlacementFailure.Unplaced != 1 {
				t.Fatalf("decoded %+v", got)
			}
		})
	}

	e := newEnv(t, f.srv.URL, FormatJSON)
	if err := e.NodeList(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Name   string        `json:"name"`
		Used   api.Resources `json:"used"`
		Allocs int           `json:"allocs"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Name != "dev-1" || rows[0].Used.CPU != 100 || rows[0].Allocs != 2 {
		t.Fatalf("node list JSON %+v", rows)
	}
}

func TestAllocLogs(t *testing.T) {
	f := viewServer(t)
	var gotQuery string
	f.mux.HandleFunc("GET /v1/allocation/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.Path + "?" + r.URL.RawQuery
		_, _ = io.WriteString(w, "line 1\nline 2\n")
	})
	e := newEnv(t, f.srv.URL, FormatTable)
	if err := e.AllocLogs(context.Background(), "a0c0", LogOptions{Stderr: true, Follow: true}); err != nil {
		t.Fatal(err)
	}
	if e.out.String() != "line 1\nline 2\n" {
		t.Fatalf("logs %q", e.out.String())
	}
	if gotQuery != "/v1/allocation/a0c0ffee-0000-0000-0000-000000000000/logs?follow=true&type=stderr" {
		t.Fatalf("log request %s", gotQuery)
	}
}

func TestAllocLogsFollowEndsOnCancel(t *testing.T) {
	f := viewServer(t)
	f.mux.HandleFunc("GET /v1/allocation/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a follow that never ends by itself
	})
	e := newEnv(t, f.srv.URL, FormatTable)
	out := &signalWriter{wrote: make(chan struct{})}
	e.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.AllocLogs(ctx, "a0c0", LogOptions{Follow: true}) }()
	<-out.wrote // the stream is flowing
	cancel()    // Ctrl-C
	if err := <-done; err != nil {
		t.Fatalf("a cancelled follow returned %v, want nil", err)
	}
	if out.String() != "first\n" {
		t.Fatalf("streamed %q", out.String())
	}
}

// signalWriter closes wrote on the first write.
type signalWriter struct {
	mu     sync.Mutex
	buf    strings.Builder
	wrote  chan struct{}
	closed bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed && len(p) > 0 {
		close(w.wrote)
		w.closed = true
	}
	return w.buf.Write(p)
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestSanitize(t *testing.T) {
	cases := map[string]string{
		"plain":              "plain",
		"tab\there":          "tab here",
		"new\nline\r":        "new line ",
		"esc\x1b[31mred":     "esc[31mred",
		"bell\a and del\x7f": "bell and del",
	}
	for in, want := range cases {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAge(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {59 * time.Second, "59s"}, {90 * time.Second, "1m"},
		{3 * time.Hour, "3h"}, {47 * time.Hour, "47h"}, {72 * time.Hour, "3d"},
	}
	for _, tc := range cases {
		if got := age(now, now.Add(-tc.d).UnixNano()); got != tc.want {
			t.Errorf("age(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if age(now, 0) != "-" {
		t.Error("age of an unset time should be -")
	}
}
