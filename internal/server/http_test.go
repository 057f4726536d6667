package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"http addr", func(c *Config) { c.HTTPAddr = "nope" }, "http_addr"},
		{"raft addr", func(c *Config) { c.RaftAddr = "1.2.3.4" }, "raft_addr"},
		{"raft unspecified", func(c *Config) { c.RaftAddr = "0.0.0.0:4647" }, "raft_addr"},
		{"name", func(c *Config) { c.NodeName = "" }, "name"},
		{"ttl", func(c *Config) { c.HeartbeatTTL = 0 }, "heartbeat_ttl"},
		{"reconcile", func(c *Config) { c.ReconcileInterval = -time.Second }, "reconcile_interval"},
		{"sample", func(c *Config) { c.Scheduler.SampleSize = 0 }, "scheduler.sample_size"},
		{"scheduler", func(c *Config) { c.Scheduler.Architecture = "three-level" }, "scheduler.architecture"},
		{"two-level offer timeout", func(c *Config) {
			c.Scheduler.Architecture, c.Scheduler.TwoLevel.Allocator.OfferTimeout = architecture.TwoLevel, -time.Second
		}, "scheduler.two_level.allocator.offer_timeout"},
		{"schedulers", func(c *Config) {
			c.Scheduler.Architecture, c.Scheduler.SharedState.Workers = architecture.SharedState, 0
		}, "scheduler.shared_state.workers"},
		{"batch schedulers", func(c *Config) {
			c.Scheduler.Architecture, c.Scheduler.SharedState.BatchWorkers = architecture.SharedState, -2
		}, "scheduler.shared_state.batch_workers"},
		{"plan batch", func(c *Config) { c.PlanBatch = -1 }, "plan_batch"},
		{"expect negative", func(c *Config) { c.BootstrapExpect = -1 }, "bootstrap_expect"},
		{"expect without join", func(c *Config) { c.BootstrapExpect = 3 }, "join"},
		{"bad join", func(c *Config) { c.BootstrapExpect, c.Join = 3, []string{"nohost"} }, "join"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseHTTPAddr = "0.0.0.0:4646" }, "advertise_http_addr"},
		{"snapshots retain", func(c *Config) { c.SnapshotsRetain = -1 }, "snapshots_retain"},
		{"raft log store", func(c *Config) { c.RaftLogStore = "rocksdb" }, "raft_log_store"},
		{"spool in raft dir", func(c *Config) { c.SpoolDir = filepath.Join(c.DataDir, "raft", "spool") }, "spool_dir"},
		{"max snapshot upload", func(c *Config) { c.MaxSnapshotUpload = 0 }, "max_snapshot_upload"},
		{"disk reserve", func(c *Config) { c.DiskReserve = -1 }, "disk_reserve"},
		{"body timeout", func(c *Config) { c.BodyTimeout = 0 }, "body_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("err %v, want one naming %s", err, tc.field)
			}
		})
	}
	// Several bad fields are all reported.
	cfg := testConfig(t)
	cfg.DataDir, cfg.HeartbeatTTL = "", 0
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "data_dir") || !strings.Contains(err.Error(), "heartbeat_ttl") {
		t.Fatalf("err %v, want both fields", err)
	}
}

// rawRequest sends a request with a raw body and decodes the error answer.
func rawRequest(t *testing.T, s *Server, method, path, body string) (int, api.ErrorResponse) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er api.ErrorResponse
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &er)
	return resp.StatusCode, er
}

func TestJobRegisterValidation(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	defer http.DefaultClient.CloseIdleConnections()
	tests := []struct {
		name   string
		body   string
		code   int
		field  string
		errHas string
	}{
		{"no job", `{}`, 400, "job", "job is required"},
		{"bad fields", `{"job":{"name":"bad name","driver":"mock","resources":{"cpu":0,"memory_mb":10}}}`, 400, "resources.cpu", "invalid job"},
		{"unknown driver", `{"job":{"name":"x","driver":"warp","resources":{"cpu":1,"memory_mb":10}}}`, 400, "driver", "unknown driver"},
		{"priority", `{"job":{"name":"x","driver":"mock","priority":101,"resources":{"cpu":1,"memory_mb":10}}}`, 400, "priority", "between 1 and 100"},
		{"unknown field", `{"job":{"name":"x","colour":"red"}}`, 400, "", "unknown field \"colour\""},
		{"not json", `{"job":`, 400, "", "invalid request body"},
		{"trailing data", `{"job":null} {}`, 400, "", "unexpected data"},
		{"empty", ``, 400, "", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, er := rawRequest(t, s, "PUT", "/v1/jobs", tc.body)
			if code != tc.code || !strings.Contains(er.Error, tc.errHas) {
				t.Fatalf("got %d %q, want %d containing %q", code, er.Error, tc.code, tc.errHas)
			}
			if tc.field != "" {
				found := false
				for _, f := range er.Fields {
					found = found || f.Field == tc.field
				}
				if !found {
					t.Fatalf("fields %+v do not name %s", er.Fields, tc.field)
				}
			}
		})
	}
	jobs, _, err := c.ListJobs(bg, nil)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("invalid submissions stored something: %v %v", jobs, err)
	}
	if got := s.State().Snapshot().Index(); got != 0 {
		t.Fatalf("state index %d after only invalid writes, want 0", got)
	}
}

func TestJobLifecycle(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	reg, err := c.RegisterJob(bg, mockJob("web", 2))
	if err != nil || reg.Version != 1 || reg.JobID != "web" {
		t.Fatalf("register: %+v %v", reg, err)
	}
	// Same spec: same version; changed spec: next version.
	reg2, err := c.RegisterJob(bg, mockJob("web", 3))
	if err != nil || reg2.Version != 1 {
		t.Fatalf("re-register with new count: %+v %v", reg2, err)
	}
	j := mockJob("web", 3)
	j.Env = map[string]string{"A": "1"}
	reg3, err := c.RegisterJob(bg, j)
	if err != nil || reg3.Version != 2 {
		t.Fatalf("re-register with new env: %+v %v", reg3, err)
	}
	sc, err := c.ScaleJob(bg, "web", 5)
	if err != nil || sc.Version != 2 {
		t.Fatalf("scale: %+v %v", sc, err)
	}
	job, meta, err := c.Job(bg, "web", nil)
	if err != nil || job.Count != 5 || meta.LastIndex < sc.Index {
		t.Fatalf("job: %+v %+v %v", job, meta, err)
	}
	if _, err := c.ScaleJob(bg, "web", -1); !isStatus(err, 400) {
		t.Fatalf("scale to -1: %v, want 400", err)
	}
	if _, err := c.ScaleJob(bg, "nope", 1); !api.IsNotFound(err) {
		t.Fatalf("scale unknown: %v, want 404", err)
	}
	if _, err := c.StopJob(bg, "web", false); err != nil {
		t.Fatal(err)
	}
	job, _, _ = c.Job(bg, "web", nil)
	if !job.Stop || job.Status != structs.JobStatusDead {
		t.Fatalf("stopped job: stop %v status %s", job.Stop, job.Status)
	}
	if _, err := c.StopJob(bg, "web", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Job(bg, "web", nil); !api.IsNotFound(err) {
		t.Fatalf("purged job: %v, want 404", err)
	}
	if _, err := c.StopJob(bg, "web", true); !api.IsNotFound(err) {
		t.Fatalf("purge again: %v, want 404", err)
	}
	if code, er := rawRequest(t, s, "DELETE", "/v1/job/web?purge=yes", ""); code != 400 || !strings.Contains(er.Error, "purge") {
		t.Fatalf("purge=yes: %d %q", code, er.Error)
	}
	if code, _ := rawRequest(t, s, "GET", "/v1/nothing", ""); code != 404 {
		t.Fatalf("unknown endpoint: %d", code)
	}
	http.DefaultClient.CloseIdleConnections()
}

func isStatus(err error, code int) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.StatusCode == code
}

func TestBlockingQueryWakesOnChange(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	if _, err := c.RegisterJob(bg, mockJob("a", 0)); err != nil {
		t.Fatal(err)
	}
	_, meta, err := c.ListJobs(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		jobs []*api.JobListStub
		meta *api.QueryMeta
		err  error
	}
	done := make(chan result, 1)
	go func() {
		jobs, m, err := c.ListJobs(bg, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- result{jobs, m, err}
	}()
	reg, err := c.RegisterJob(bg, mockJob("b", 0))
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.jobs) != 2 || r.meta.LastIndex < reg.Index {
		t.Fatalf("woke with %d jobs at %d (register at %d): %v", len(r.jobs), r.meta.LastIndex, reg.Index, r.err)
	}
	// A short wait ends with the same index when nothing changes.
	_, m2, err := c.ListJobs(bg, &api.QueryOptions{WaitIndex: r.meta.LastIndex, WaitTime: 10 * time.Millisecond})
	if err != nil || m2.LastIndex != r.meta.LastIndex {
		t.Fatalf("timeout answer %+v %v", m2, err)
	}
}

func TestHeartbeats(t *testing.T) {
	cfg := testConfig(t)
	cfg.HeartbeatTTL = 300 * time.Millisecond
	s, c := startServer(t, cfg)

	if _, err := c.Heartbeat(bg, "ghost"); !api.IsNotFound(err) {
		t.Fatalf("heartbeat of unknown node: %v, want 404", err)
	}
	reg, err := c.RegisterNode(bg, fakeNode("n1", 4000, 4096))
	if err != nil || reg.NodeID != "n1" || reg.HeartbeatTTL.D() != cfg.HeartbeatTTL {
		t.Fatalf("register: %+v %v", reg, err)
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 2)); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, "web", 2)

	// No heartbeats: the node goes down and its allocations are lost.
	waitFor(t, 10*time.Second, "node down", func() (bool, string) {
		n, _, err := c.Node(bg, "n1", nil)
		return err == nil && n.Status == structs.NodeStatusDown, fmt.Sprint(n.Status, err)
	})
	allocs, _, _ := c.NodeAllocations(bg, "n1", nil)
	for _, a := range allocs {
		if a.ClientStatus != structs.AllocClientLost || a.DesiredStatus != structs.AllocDesiredStop {
			t.Errorf("%s on down node: client %s desired %s", a.Name, a.ClientStatus, a.DesiredStatus)
		}
	}
	if got := counterValue(t, s, "gantry_heartbeat_misses_total"); got < 1 {
		t.Errorf("heartbeat misses metric %v, want >= 1", got)
	}

	// A heartbeat brings the node back.
	if _, err := c.Heartbeat(bg, "n1"); err != nil {
		t.Fatal(err)
	}
	n, _, _ := c.Node(bg, "n1", nil)
	if n.Status != structs.NodeStatusReady {
		t.Fatalf("node after heartbeat: %s", n.Status)
	}
	// ...and the job is placed again on it.
	waitLive(t, c, "web", 2)
}

// counterValue reads a metric from /metrics.
func counterValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func TestNodeEndpoints(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	defer http.DefaultClient.CloseIdleConnections()
	for _, id := range []string{"abc1", "abd2"} {
		if _, err := c.RegisterNode(bg, fakeNode(id, 1000, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, err := c.Node(bg, "abc", nil); err != nil || n.ID != "abc1" {
		t.Fatalf("prefix lookup: %v %v", n, err)
	}
	if n, _, err := c.Node(bg, "node-abd2", nil); err != nil || n.ID != "abd2" {
		t.Fatalf("name lookup: %v %v", n, err)
	}
	if _, _, err := c.Node(bg, "ab", nil); !isStatus(err, 400) || !strings.Contains(err.Error(), "abc1, abd2") {
		t.Fatalf("ambiguous lookup: %v", err)
	}
	if _, err := c.RegisterNode(bg, &api.Node{ID: "x"}); !isStatus(err, 400) || !strings.Contains(err.Error(), "capacity.cpu") {
		t.Fatalf("invalid node: %v", err)
	}
	// An agent that sends no ID gets one.
	reg, err := c.RegisterNode(bg, &api.Node{Name: "anon", Capacity: api.Resources{CPU: 1, MemoryMB: 1}})
	if err != nil || reg.NodeID == "" {
		t.Fatalf("register without ID: %+v %v", reg, err)
	}
	if _, err := c.DrainNode(bg, "abc1", true); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := c.Node(bg, "abc1", nil); !n.Drain {
		t.Fatal("drain not set")
	}
	// Re-registering keeps the operator's drain.
	if _, err := c.RegisterNode(bg, fakeNode("abc1", 1000, 1024)); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := c.Node(bg, "abc1", nil); !n.Drain {
		t.Fatal("re-register cleared drain")
	}
	if _, err := c.UpdateAllocations(bg, "ghost", nil); !api.IsNotFound(err) {
		t.Fatalf("updates from unknown node: %v", err)
	}
	_, err = c.UpdateAllocations(bg, "abc1", []*api.AllocClientUpdate{{ID: "a", ClientStatus: "sleeping"}})
	if !isStatus(err, 400) || !strings.Contains(err.Error(), "updates[0].client_status") {
		t.Fatalf("bad update: %v", err)
	}
	if l, err := c.Leader(bg); err != nil || l == "" {
		t.Fatalf("leader: %q %v", l, err)
	}
	if st, err := c.SchedulerStatus(bg); err != nil || st.Architecture != "monolithic" {
		t.Fatalf("scheduler status: %+v %v", st, err)
	}
	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"gantry_http_request_duration_seconds", "gantry_raft_apply_duration_seconds", "gantry_heartbeat_misses_total"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEndToEndPlacement drives a fake agent through the API: register,
// watch its allocations with a blocking query, report them running, and
// see the job running; a failed copy is replaced.
func TestEndToEndPlacement(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	if _, err := c.RegisterNode(bg, fakeNode("n1", 2000, 2048)); err != nil {
		t.Fatal(err)
	}
	job := mockJob("web", 3)
	// Replace a failed copy at once (the default waits 30s first).
	job.Reschedule = api.ReschedulePolicy{Unlimited: true, Delay: api.Duration(time.Millisecond)}
	if _, err := c.RegisterJob(bg, job); err != nil {
		t.Fatal(err)
	}
	// The agent's loop: block until its allocations change.
	var allocs []*api.Allocation
	var index uint64
	for len(allocs) < 3 {
		var meta *api.QueryMeta
		var err error
		allocs, meta, err = c.NodeAllocations(bg, "n1", &api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if meta.LastIndex <= index {
			t.Fatalf("blocking query returned index %d, not above %d, with %d allocs", meta.LastIndex, index, len(allocs))
		}
		index = meta.LastIndex
	}
	var updates []*api.AllocClientUpdate
	for _, a := range allocs {
		if a.Job == nil || a.Job.ID != "web" {
			t.Fatalf("allocation %s lacks its job", a.ID)
		}
		updates = append(updates, &api.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientRunning,
			TaskState: api.TaskState{State: structs.TaskStateRunning}})
	}
	if _, err := c.UpdateAllocations(bg, "n1", updates); err != nil {
		t.Fatal(err)
	}
	st, _, err := c.JobStatus(bg, "web", nil)
	if err != nil || st.Job.Status != structs.JobStatusRunning || st.Summary["running"] != 3 {
		t.Fatalf("job status: %+v %v", st, err)
	}
	// A failed copy is replaced by a new allocation.
	failed := allocs[0]
	if _, err := c.UpdateAllocations(bg, "n1", []*api.AllocClientUpdate{{ID: failed.ID, ClientStatus: structs.AllocClientFailed}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "replacement of the failed copy", func() (bool, string) {
		for _, a := range liveAllocs(t, c, "web") {
			if a.Index == failed.Index && a.ID != failed.ID {
				return true, ""
			}
		}
		return false, "no replacement yet"
	})
	// The node holds 2000m: a fourth copy of 500m fits, a fifth does not.
	if _, err := c.ScaleJob(bg, "web", 5); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, "web", 4)
	waitFor(t, 10*time.Second, "placement failure recorded", func() (bool, string) {
		st, _, err := c.JobStatus(bg, "web", nil)
		return err == nil && st.PlacementFailure != nil && st.PlacementFailure.Unplaced == 1, fmt.Sprint(st.PlacementFailure, err)
	})
	all, _, _ := c.ListAllocations(bg, nil)
	var used int64
	for _, a := range all {
		if !a.Terminal() {
			used += a.Resources.CPU
		}
	}
	if used > 2000 {
		t.Fatalf("node over-committed: %dm of 2000m", used)
	}
	// Allocation lookups by prefix.
	a, _, err := c.Allocation(bg, failed.ID[:8], nil)
	if err != nil || a.ID != failed.ID || a.ClientStatus != structs.AllocClientFailed {
		t.Fatalf("alloc by prefix: %+v %v", a, err)
	}
}

func TestLogProxy(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	// A fake agent log endpoint: sends two chunks, the second only after
	// the first reached the client (proving the proxy flushes).
	release := make(chan struct{})
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/logs") || r.URL.Query().Get("type") != "stderr" ||
			r.URL.Query().Get("follow") != "true" || r.URL.Query().Get("offset") != "3" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"allocation unknown to the agent"}`)
			return
		}
		fmt.Fprint(w, "hello\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "world\n")
	}))
	defer agent.Close()

	n := fakeNode("n1", 2000, 2048)
	n.HTTPAddr = strings.TrimPrefix(agent.URL, "http://")
	if _, err := c.RegisterNode(bg, n); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 1)); err != nil {
		t.Fatal(err)
	}
	id := waitLive(t, c, "web", 1)[0].ID

	rc, err := c.AllocLogs(bg, id, api.LogOptions{Stream: "stderr", Follow: true, Offset: 3})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("first chunk %q %v", buf, err)
	}
	close(release)
	rest, _ := io.ReadAll(rc)
	rc.Close()
	if string(rest) != "world\n" {
		t.Fatalf("rest %q", rest)
	}

	// The agent's own errors are relayed.
	if _, err := c.AllocLogs(bg, id, api.LogOptions{}); !api.IsNotFound(err) || !strings.Contains(err.Error(), "unknown to the agent") {
		t.Fatalf("agent 404: %v", err)
	}
	if _, err := c.AllocLogs(bg, id, api.LogOptions{Stream: "stdin"}); !isStatus(err, 400) {
		t.Fatalf("bad stream: %v", err)
	}
	// An unreachable agent is a 502 naming the node.
	agent.Close()
	if _, err := c.AllocLogs(bg, id, api.LogOptions{}); !isStatus(err, 502) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("unreachable agent: %v", err)
	}
	_ = s
}

// TestWritesNeedLeader sends writes before the single server has elected
// itself (its election timeout is long): they answer 503 and change
// nothing; so do consistent reads, while ?stale reads are served from
// local state.
func TestWritesNeedLeader(t *testing.T) {
	cfg := testConfig(t)
	cfg.RaftTimeout = 10 * time.Second
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	defer http.DefaultClient.CloseIdleConnections()
	if s.Leader() {
		t.Skip("elected already; the machine must be very slow")
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/v1/jobs", `{"job":{"name":"web","driver":"mock","resources":{"cpu":1,"memory_mb":1}}}`},
		{"POST", "/v1/node/register", `{"node":{"id":"n1","name":"n1","capacity":{"cpu":1,"memory_mb":1}}}`},
		{"POST", "/v1/node/n1/heartbeat", `{}`},
	} {
		code, er := rawRequest(t, s, tc.method, tc.path, tc.body)
		if code != http.StatusServiceUnavailable || !strings.Contains(er.Error, "no cluster leader") {
			t.Errorf("%s %s: %d %q, want 503 naming the leader", tc.method, tc.path, code, er.Error)
		}
	}
	if code, _ := rawRequest(t, s, "GET", "/v1/jobs", ""); code != http.StatusServiceUnavailable {
		t.Errorf("consistent read without leader: %d, want 503", code)
	}
	if code, _ := rawRequest(t, s, "GET", "/v1/jobs?stale", ""); code != http.StatusOK {
		t.Errorf("stale read without leader: %d, want 200", code)
	}
	if _, err := s.SubmitPlan(bg, &structs.Plan{JobID: "web"}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("plan without leadership: %v", err)
	}
}
