package agent

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestCheckStateThresholds(t *testing.T) {
	type step struct {
		result  string
		status  string // after the result
		changed bool
	}
	cases := []struct {
		name       string
		succ, fail int
		steps      []step
	}{
		{"defaults flip at once", 1, 1, []step{
			{structs.CheckPassing, structs.CheckPassing, true},
			{structs.CheckPassing, structs.CheckPassing, false},
			{structs.CheckCritical, structs.CheckCritical, true},
			{structs.CheckWarning, structs.CheckWarning, true},
			{structs.CheckPassing, structs.CheckPassing, true},
		}},
		{"first failure replaces the placeholder output", 1, 1, []step{
			{structs.CheckCritical, structs.CheckCritical, true},
			{structs.CheckCritical, structs.CheckCritical, false},
		}},
		{"success threshold 3", 3, 1, []step{
			{structs.CheckPassing, structs.CheckCritical, true}, // output only
			{structs.CheckPassing, structs.CheckCritical, false},
			{structs.CheckPassing, structs.CheckPassing, true},
		}},
		{"failure threshold 2, a pass in between resets", 1, 2, []step{
			{structs.CheckPassing, structs.CheckPassing, true},
			{structs.CheckCritical, structs.CheckPassing, false},
			{structs.CheckPassing, structs.CheckPassing, false},
			{structs.CheckCritical, structs.CheckPassing, false},
			{structs.CheckCritical, structs.CheckCritical, true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &checkState{check: structs.Check{SuccessThreshold: tc.succ, FailureThreshold: tc.fail},
				status: structs.CheckCritical, output: checkNotRun}
			for i, st := range tc.steps {
				changed := s.observe(st.result, fmt.Sprintf("out %d", i), int64(i+1))
				if s.status != st.status || changed != st.changed {
					t.Fatalf("step %d (%s): status %s changed %v, want %s %v", i, st.result, s.status, changed, st.status, st.changed)
				}
			}
		})
	}
}

func TestCheckRestartGrace(t *testing.T) {
	start := time.Unix(1000, 0)
	cr := &structs.CheckRestart{Limit: 2, Grace: structs.Duration(10 * time.Second)}
	cases := []struct {
		fails int
		after time.Duration
		want  bool
	}{
		{1, time.Minute, false},
		{2, 5 * time.Second, false}, // within grace
		{2, 10 * time.Second, true},
		{3, time.Minute, true},
	}
	for _, tc := range cases {
		s := &checkState{check: structs.Check{CheckRestart: cr}, failRun: tc.fails}
		if got := s.wantsRestart(start.Add(tc.after), start); got != tc.want {
			t.Errorf("fails %d after %s: restart %v, want %v", tc.fails, tc.after, got, tc.want)
		}
	}
	if (&checkState{failRun: 100}).wantsRestart(start.Add(time.Hour), start) {
		t.Error("a check without check_restart restarted the task")
	}
}

func TestTruncateCheckOutput(t *testing.T) {
	long := make([]byte, structs.MaxCheckOutput+10)
	for i := range long {
		long[i] = 'x'
	}
	long[structs.MaxCheckOutput-1], long[structs.MaxCheckOutput] = 0xc3, 0xa9 // é across the cut
	got := structs.TruncateCheckOutput(string(long))
	if len(got) != structs.MaxCheckOutput-1 {
		t.Fatalf("len %d, want %d (the cut must not split a UTF-8 sequence)", len(got), structs.MaxCheckOutput-1)
	}
	var b boundedBuffer
	for range 100 {
		_, _ = b.Write([]byte("0123456789"))
	}
	if n := len(b.String()); n != structs.MaxCheckOutput {
		t.Fatalf("bounded buffer kept %d bytes, want %d", n, structs.MaxCheckOutput)
	}
}

// checkedAlloc is a service copy whose port "http" is the given host
// port, with one service "web" and the checks given.
func checkedAlloc(nodeID string, port int, checks ...structs.Check) *structs.Allocation {
	al := testAlloc(nodeID, structs.JobTypeService, "exec", sh("sleep 1000"))
	al.Job.Network = &structs.Network{Ports: []structs.Port{{Label: "http"}}}
	al.Job.Services = []structs.Service{{Name: "web", Port: "http", Checks: checks}}
	al.Job.Restart.Attempts = 3
	al.Ports = []structs.AllocPort{{Label: "http", Value: port}}
	return al
}

func healthOf(fs *fakeServer, id string) *structs.AllocHealth {
	if a := fs.alloc(id); a != nil {
		return a.Health
	}
	return nil
}

func TestHealthHTTPCheckRestartsUnhealthyTask(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok.Load() {
			_, _ = w.Write([]byte("fine"))
			return
		}
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer target.Close()
	_, portStr, _ := net.SplitHostPort(target.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.PortIP = "127.0.0.1"; c.KillTimeout = time.Second })
	al := checkedAlloc(a.NodeID(), port, structs.Check{Type: structs.CheckHTTP, Path: "/health",
		Interval: structs.Duration(100 * time.Millisecond), Timeout: structs.Duration(time.Second),
		CheckRestart: &structs.CheckRestart{Limit: 3}})
	fs.addAlloc(al)

	eventually(t, "the copy to be healthy", func() bool { h := healthOf(fs, al.ID); return h != nil && h.Healthy })
	h := healthOf(fs, al.ID)
	if len(h.Checks) != 1 || h.Checks[0].Name != "web-http-0" || h.Checks[0].Status != structs.CheckPassing {
		t.Fatalf("checks = %+v", h.Checks)
	}

	ok.Store(false)
	eventually(t, "the copy to be unhealthy", func() bool { h := healthOf(fs, al.ID); return h != nil && !h.Healthy })
	eventually(t, "a restart for the failing check", func() bool {
		a := fs.alloc(al.ID)
		return a.TaskState.Restarts >= 1 && hasEvent(a, EventUnhealthy)
	})
	ok.Store(true)
	eventually(t, "the restarted copy to be healthy again", func() bool {
		a := fs.alloc(al.ID)
		return a.ClientStatus == structs.AllocClientRunning && a.Health != nil && a.Health.Healthy
	})
	fs.setDesired(al.ID, structs.AllocDesiredStop)
	final := fs.waitStatus(al.ID, structs.AllocClientComplete)
	if final.Health == nil || final.Health.Healthy {
		t.Fatalf("a stopped copy reports health %+v, want unhealthy", final.Health)
	}
}

func TestHealthWithoutChecksAndScriptCheck(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.KillTimeout = time.Second })

	plain := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh("sleep 1000"))
	fs.addAlloc(plain)
	eventually(t, "a copy without checks to be healthy once running", func() bool {
		h := healthOf(fs, plain.ID)
		return h != nil && h.Healthy && h.Checks == nil
	})

	// Script checks run beside the task: exit 1 warns, which is not healthy.
	script := checkedAlloc(a.NodeID(), 1, structs.Check{Type: structs.CheckScript, Command: "/bin/sh",
		Args: []string{"-c", "echo degraded; exit 1"}, Interval: structs.Duration(100 * time.Millisecond)})
	fs.addAlloc(script)
	eventually(t, "the script check to warn", func() bool {
		h := healthOf(fs, script.ID)
		return h != nil && len(h.Checks) == 1 && h.Checks[0].Status == structs.CheckWarning && h.Checks[0].Output == "degraded"
	})
	if healthOf(fs, script.ID).Healthy {
		t.Fatal("a warning check left the copy healthy")
	}
	// TCP to a closed port is critical, and without check_restart the task runs on.
	closed := checkedAlloc(a.NodeID(), freePort(t), structs.Check{Type: structs.CheckTCP, Interval: structs.Duration(100 * time.Millisecond)})
	fs.addAlloc(closed)
	eventually(t, "the tcp check to fail", func() bool {
		h := healthOf(fs, closed.ID)
		return h != nil && len(h.Checks) == 1 && h.Checks[0].Status == structs.CheckCritical && h.Checks[0].Output != checkNotRun
	})
	time.Sleep(300 * time.Millisecond)
	if r := fs.alloc(closed.ID).TaskState.Restarts; r != 0 {
		t.Fatalf("a failing check without check_restart restarted the task %d times", r)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestHealthKeptAcrossAgentRestart: a re-attached task keeps its checks'
// statuses, so a healthy copy is never reported unhealthy because its
// agent restarted.
func TestHealthKeptAcrossAgentRestart(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer target.Close()
	port := target.Listener.Addr().(*net.TCPAddr).Port
	fs := newFakeServer(t)
	dataDir := t.TempDir()
	opts := func(c *Config) { c.PortIP = "127.0.0.1"; c.KillTimeout = time.Second }
	a1 := startAgent(t, fs, dataDir, opts)
	al := checkedAlloc(a1.NodeID(), port, structs.Check{Type: structs.CheckHTTP,
		Interval: structs.Duration(100 * time.Millisecond), InitialDelay: structs.Duration(time.Second)})
	fs.addAlloc(al)
	eventually(t, "the copy to be healthy", func() bool { h := healthOf(fs, al.ID); return h != nil && h.Healthy })
	before := len(fs.updates(al.ID))
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	a2 := startAgent(t, fs, dataDir, opts)
	eventually(t, "re-attach event", func() bool { return hasEvent(fs.alloc(al.ID), EventReattached) })
	time.Sleep(1500 * time.Millisecond) // past the initial delay: the checks ran again
	for i, u := range fs.updates(al.ID)[before:] {
		if u.Health == nil || !u.Health.Healthy {
			t.Fatalf("report %d after the agent restart: health %+v, want healthy throughout", i, u.Health)
		}
	}
	fs.setDesired(al.ID, structs.AllocDesiredStop)
	fs.waitStatus(al.ID, structs.AllocClientComplete)
	_ = a2
}
