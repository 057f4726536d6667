package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/cgroups"
	"github.com/gantry-project/gantry/internal/driver/shim"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

func testDrivers(t *testing.T) []driver.Driver {
	t.Helper()
	exec, err := driver.NewExec(driver.ExecOptions{
		ShimCommand: []string{os.Args[0]}, PollInterval: 20 * time.Millisecond,
		Cgroups: cgroups.Disabled("test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return []driver.Driver{exec, driver.NewMock(nil)}
}

// startAgent runs an agent against fs on dataDir; it is shut down (tasks
// left running) at the end of the test unless the test did it.
func startAgent(t *testing.T, fs *fakeServer, dataDir string, mod ...func(*Config)) *Agent {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Servers, cfg.DataDir, cfg.Name = []string{fs.addr()}, dataDir, "n1"
	cfg.Labels, cfg.CPU, cfg.MemoryMB = map[string]string{"zone": "a"}, 2000, 1024
	cfg.Drivers, cfg.KillTimeout, cfg.WatchWait = testDrivers(t), 5*time.Second, 5*time.Second
	cfg.UpdateWindow = 10 * time.Millisecond
	for _, f := range mod {
		f(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.Shutdown()
		killLeftovers(a)
	})
	return a
}

// killLeftovers kills the exec tasks a test left running: Shutdown leaves
// tasks running on purpose (a restarted agent re-attaches to them).
func killLeftovers(a *Agent) {
	var handles []*driver.Handle
	for _, rec := range a.store.all() {
		handles = append(handles, rec.Handle)
		for _, t := range rec.Tasks {
			handles = append(handles, t.Handle)
		}
	}
	for _, h := range handles {
		if h == nil || h.Driver != "exec" {
			continue
		}
		var st struct {
			ShimPID   int    `json:"shim_pid"`
			ShimStart uint64 `json:"shim_start"`
			TaskPID   int    `json:"task_pid"`
			TaskStart uint64 `json:"task_start"`
		}
		if json.Unmarshal(h.State, &st) != nil {
			continue
		}
		if shim.Alive(st.TaskPID, st.TaskStart) {
			_ = syscall.Kill(-st.TaskPID, syscall.SIGKILL)
		}
		if shim.Alive(st.ShimPID, st.ShimStart) {
			_ = syscall.Kill(st.ShimPID, syscall.SIGKILL)
		}
		// The shim is this test process's child: reap it, or it stays a
		// zombie (ECHILD if it was reaped already).
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(st.ShimPID, &ws, 0, nil)
	}
}

var allocSeq int

func testAlloc(nodeID string, typ structs.JobType, drv string, config map[string]any) *structs.Allocation {
	allocSeq++
	job := &structs.Job{ID: "job", Name: "job", Type: typ, Count: 1, Driver: drv, Config: config,
		Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	job.Canonicalize()
	job.Restart = structs.RestartPolicy{Attempts: 0, Interval: structs.Duration(time.Minute), Delay: structs.Duration(10 * time.Millisecond)}
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", allocSeq)
	return &structs.Allocation{ID: id, JobID: job.ID, Name: structs.AllocName(job.ID, 0), NodeID: nodeID,
		Resources: job.Resources, Job: job}
}

func sh(script string) map[string]any {
	return map[string]any{"command": "/bin/sh", "args": []any{"-c", script}}
}

// lines counts the lines of a marker file a task appends to on each start.
func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func hasEvent(a *structs.Allocation, typ string) bool {
	for _, e := range a.TaskState.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func TestConfigValidation(t *testing.T) {
	ok := DefaultConfig()
	ok.DataDir = t.TempDir()
	cases := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no servers", func(c *Config) { c.Servers = nil }, "servers"},
		{"empty server", func(c *Config) { c.Servers = []string{" "} }, "servers[0]"},
		{"comma server", func(c *Config) { c.Servers = []string{"a:1,b:2"} }, "servers[0]"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"bad name", func(c *Config) { c.Name = "a b" }, "name"},
		{"bad label", func(c *Config) { c.Labels = map[string]string{"a=b": "x"} }, "labels"},
		{"negative cpu", func(c *Config) { c.CPU = -1 }, "cpu"},
		{"negative memory", func(c *Config) { c.MemoryMB = -1 }, "memory_mb"},
		{"bad http addr", func(c *Config) { c.HTTPAddr = "nope" }, "http_addr"},
		{"no http addr", func(c *Config) { c.HTTPAddr = "" }, "http_addr"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger"},
		{"no clock", func(c *Config) { c.Now = nil }, "now"},
		{"negative kill timeout", func(c *Config) { c.KillTimeout = -time.Second }, "kill_timeout"},
		{"negative update window", func(c *Config) { c.UpdateWindow = -time.Second }, "update_window"},
		{"negative watch wait", func(c *Config) { c.WatchWait = -time.Second }, "watch_wait"},
		{"duplicate driver", func(c *Config) { c.Drivers = []driver.Driver{driver.NewMock(nil), driver.NewMock(nil)} }, "drivers[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			// Exactly one error, naming the field.
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != 1 || !strings.HasPrefix(joined.Unwrap()[0].Error(), tc.field+": ") {
				t.Fatalf("err = %v, want exactly one, naming %q", err, tc.field)
			}
			if _, err := New(c); err == nil {
				t.Fatal("New accepted the config Validate refuses")
			}
		})
	}
	// Every bad field is reported at once.
	_, err := New(Config{CPU: -1})
	for _, f := range []string{"servers:", "data_dir:", "cpu:"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("err = %v, want it to name %s", err, f)
		}
	}
}

// TestDefaultConfig: DefaultConfig lacks only the data dir.
func TestDefaultConfig(t *testing.T) {
	err := DefaultConfig().Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 1 || !strings.HasPrefix(err.Error(), "data_dir: ") {
		t.Fatalf("err = %v, want only data_dir", err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNodeIDPersists(t *testing.T) {
	dir := t.TempDir()
	id1, err := loadNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := loadNodeID(dir)
	if err != nil || id1 != id2 || !nodeIDRE.MatchString(id1) {
		t.Fatalf("ids %q %q (%v)", id1, id2, err)
	}
	if err := os.WriteFile(filepath.Join(dir, nodeIDFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadNodeID(dir); err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Fatalf("err = %v, want one quoting the bad content", err)
	}
}

func TestRegistersAndHeartbeats(t *testing.T) {
	fs := newFakeServer(t)
	fs.ttl = 150 * time.Millisecond
	a := startAgent(t, fs, t.TempDir())
	eventually(t, "3 heartbeats", func() bool { _, hb := fs.counts(); return hb >= 3 })
	n := fs.node(a.NodeID())
	if n.Name != "n1" || n.Labels["zone"] != "a" || n.Capacity != (structs.Resources{CPU: 2000, MemoryMB: 1024}) {
		t.Errorf("registered node = %+v", n)
	}
	if n.HTTPAddr != a.HTTPAddr() || n.HTTPAddr == "" || n.Attributes["os"] == "" || n.Attributes["cpu.cores"] == "" {
		t.Errorf("registered node = %+v, agent http %s", n, a.HTTPAddr())
	}
}

func TestReregistersOn404(t *testing.T) {
	fs := newFakeServer(t)
	fs.ttl = 150 * time.Millisecond
	a := startAgent(t, fs, t.TempDir())
	eventually(t, "registration", func() bool { r, _ := fs.counts(); return r == 1 })
	fs.forgetNode(a.NodeID())
	eventually(t, "second registration", func() bool { r, _ := fs.counts(); return r >= 2 })
	if fs.node(a.NodeID()) == nil {
		t.Fatal("node not registered again")
	}
}

func TestRegisterRetriesUntilServerUp(t *testing.T) {
	fs := newFakeServer(t)
	// The first server address refuses connections; the agent fails over.
	dead := "127.0.0.1:1"
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.Servers = []string{dead, fs.addr()} })
	eventually(t, "registration", func() bool { return fs.node(a.NodeID()) != nil })
}

func TestBatchTaskCompletes(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	gate := filepath.Join(t.TempDir(), "gate")
	al := testAlloc(a.NodeID(), structs.JobTypeBatch, "exec", sh(fmt.Sprintf(`echo hello; while [ ! -f %s ]; do sleep 0.02; done`, gate)))
	fs.addAlloc(al)
	running := fs.waitStatus(al.ID, structs.AllocClientRunning)
	if running.TaskState.PID <= 0 || running.TaskState.State != structs.TaskStateRunning {
		t.Errorf("running state = %+v", running.TaskState)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := fs.waitStatus(al.ID, structs.AllocClientComplete)
	if done.TaskState.ExitCode != 0 || done.TaskState.State != structs.TaskStateDead || done.TaskState.Failed {
		t.Errorf("final state = %+v", done.TaskState)
	}
	if got := fs.statuses(al.ID); !strings.HasSuffix(got, "running,complete") {
		t.Errorf("statuses = %s, want ...running,complete", got)
	}
	b, _ := tasklog.ReadAll(filepath.Join(a.cfg.DataDir, "allocs", al.ID), driver.StdoutFile)
	if string(b) != "hello\n" {
		t.Errorf("stdout = %q", b)
	}
}

func TestRestartPolicy(t *testing.T) {
	cases := []struct {
		name     string
		typ      structs.JobType
		exit     int
		attempts int
		starts   int
		status   string
	}{
		{"batch failure retried then failed", structs.JobTypeBatch, 3, 2, 3, structs.AllocClientFailed},
		{"batch success not restarted", structs.JobTypeBatch, 0, 2, 1, structs.AllocClientComplete},
		{"service exit 0 restarted", structs.JobTypeService, 0, 2, 3, structs.AllocClientFailed},
		{"no attempts", structs.JobTypeService, 1, 0, 1, structs.AllocClientFailed},
	}
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "starts")
			al := testAlloc(a.NodeID(), tc.typ, "exec", sh(fmt.Sprintf("echo start >> %s; exit %d", marker, tc.exit)))
			al.Job.Restart.Attempts = tc.attempts
			fs.addAlloc(al)
			final := fs.waitStatus(al.ID, tc.status)
			if got := lines(t, marker); got != tc.starts {
				t.Errorf("starts = %d, want %d", got, tc.starts)
			}
			ts := final.TaskState
			if ts.Restarts != tc.starts-1 || ts.ExitCode != tc.exit || ts.Failed != (tc.status == structs.AllocClientFailed) {
				t.Errorf("task state = %+v", ts)
			}
			if len(ts.Events) > structs.MaxTaskEvents {
				t.Errorf("%d events kept, max %d", len(ts.Events), structs.MaxTaskEvents)
			}
			if tc.status == structs.AllocClientFailed && final.ClientDescription == "" {
				t.Error("failed without a description")
			}
		})
	}
}

func TestRestartIntervalWindow(t *testing.T) {
	// With an injected clock, restarts older than the interval no longer
	// count: a task that fails once per interval restarts forever.
	fs := newFakeServer(t)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Minute); return now }
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.Now = clock })
	marker := filepath.Join(t.TempDir(), "starts")
	al := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh(fmt.Sprintf(`echo s >> %s; [ $(wc -l < %s) -ge 5 ] && sleep 300; exit 1`, marker, marker)))
	al.Job.Restart = structs.RestartPolicy{Attempts: 1, Interval: structs.Duration(30 * time.Second), Delay: structs.Duration(time.Millisecond)}
	fs.addAlloc(al)
	eventually(t, "5 starts", func() bool { return lines(t, marker) >= 5 })
	// The fifth start is reported after the marker line is written: wait
	// for the report, then check that no further restart followed.
	eventually(t, "the fifth start reported", func() bool {
		st := fs.alloc(al.ID)
		return st != nil && st.ClientStatus == structs.AllocClientRunning && st.TaskState.Restarts >= 4
	})
	if st := fs.alloc(al.ID); st.TaskState.Restarts != 4 {
		t.Errorf("restarts = %d, want 4", st.TaskState.Restarts)
	}
}

func TestStopOnDesiredStop(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	al := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh("sleep 300"))
	fs.addAlloc(al)
	running := fs.waitStatus(al.ID, structs.AllocClientRunning)
	pid := running.TaskState.PID
	start, err := shim.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	fs.setDesired(al.ID, structs.AllocDesiredStop)
	done := fs.waitStatus(al.ID, structs.AllocClientComplete)
	if !hasEvent(done, EventKilled) || done.TaskState.Failed {
		t.Errorf("stopped alloc = %+v", done.TaskState)
	}
	if shim.Alive(pid, start) {
		t.Error("task still running after stop")
	}
}

// TestWatchAcrossStreams checks the agent's side of the watch: when a
// stream ends it opens the next with its index and the number of
// allocations it holds, and it applies changes-only frames on top of its
// view (a stop of one allocation does not disturb the other).
func TestWatchAcrossStreams(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.WatchWait = 100 * time.Millisecond })
	first := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh("sleep 300"))
	fs.addAlloc(first)
	fs.waitStatus(first.ID, structs.AllocClientRunning)
	eventually(t, "a later watch carrying the agent's view", func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		st := fs.lastWatch[a.NodeID()]
		return fs.watches >= 3 && st.Index > 0 && st.Known == 1
	})
	second := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh("sleep 300"))
	fs.addAlloc(second)
	fs.waitStatus(second.ID, structs.AllocClientRunning)
	fs.setDesired(first.ID, structs.AllocDesiredStop)
	fs.waitStatus(first.ID, structs.AllocClientComplete)
	if got := fs.alloc(second.ID).ClientStatus; got != structs.AllocClientRunning {
		t.Fatalf("second allocation %s after the first was stopped, want running", got)
	}
	if got := fs.statuses(second.ID); !strings.HasSuffix(got, "running") || strings.Contains(got, "complete") {
		t.Errorf("second allocation's reports = %s, want it only started", got)
	}
}

func TestUnlistedAllocStopped(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	al := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh("sleep 300"))
	fs.addAlloc(al)
	running := fs.waitStatus(al.ID, structs.AllocClientRunning)
	start, _ := shim.StartTime(running.TaskState.PID)
	fs.removeAlloc(al.ID)
	eventually(t, "task to stop", func() bool { return !shim.Alive(running.TaskState.PID, start) })
	eventually(t, "alloc dir removed", func() bool {
		_, err := os.Stat(filepath.Join(a.cfg.DataDir, "allocs", al.ID))
		return os.IsNotExist(err)
	})
	if a.store.get(al.ID) != nil {
		t.Error("record kept for an allocation the server no longer lists")
	}
}

// recordingDriver wraps the mock driver and records calls in order.
type recordingDriver struct {
	*driver.MockDriver
	mu    sync.Mutex
	calls []string
}

type recordingTask struct {
	driver.Task
	d  *recordingDriver
	id string
}

func (d *recordingDriver) Start(cfg *driver.TaskConfig) (driver.Task, error) {
	t, err := d.MockDriver.Start(cfg)
	d.record("start " + cfg.AllocID)
	if err != nil {
		return nil, err
	}
	return &recordingTask{Task: t, d: d, id: cfg.AllocID}, nil
}

func (t *recordingTask) Stop(g time.Duration) error {
	err := t.Task.Stop(g)
	t.d.record("stop " + t.id)
	return err
}

func (d *recordingDriver) record(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, s)
}

func (d *recordingDriver) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func TestStopsBeforeStarts(t *testing.T) {
	fs := newFakeServer(t)
	rd := &recordingDriver{MockDriver: driver.NewMock(nil)}
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.Drivers = []driver.Driver{rd} })
	old := testAlloc(a.NodeID(), structs.JobTypeService, "mock", nil)
	fs.addAlloc(old)
	fs.waitStatus(old.ID, structs.AllocClientRunning)
	repl := testAlloc(a.NodeID(), structs.JobTypeService, "mock", nil)
	// One change evicts the old allocation and places its replacement.
	fs.apply(func(m map[string]*structs.Allocation) {
		m[old.ID].DesiredStatus = structs.AllocDesiredEvict
		r := repl.Copy()
		r.DesiredStatus, r.ClientStatus = structs.AllocDesiredRun, structs.AllocClientPending
		m[r.ID] = r
	})
	fs.waitStatus(repl.ID, structs.AllocClientRunning)
	fs.waitStatus(old.ID, structs.AllocClientComplete)
	want := []string{"start " + old.ID, "stop " + old.ID, "start " + repl.ID}
	if got := rd.log(); strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("driver calls = %v, want %v", got, want)
	}
}

func TestRestartReattaches(t *testing.T) {
	cases := []struct {
		name string
		// finishWhileDown lets the task end while no agent runs.
		finishWhileDown bool
	}{
		{"still running", false},
		{"finished while agent down", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t)
			dataDir := t.TempDir()
			tmp := t.TempDir()
			marker, gate := filepath.Join(tmp, "starts"), filepath.Join(tmp, "gate")
			a1 := startAgent(t, fs, dataDir)
			al := testAlloc(a1.NodeID(), structs.JobTypeBatch, "exec",
				sh(fmt.Sprintf(`echo s >> %s; while [ ! -f %s ]; do sleep 0.02; done; exit 4`, marker, gate)))
			fs.addAlloc(al)
			running := fs.waitStatus(al.ID, structs.AllocClientRunning)
			pid := running.TaskState.PID
			start, _ := shim.StartTime(pid)
			if err := a1.Shutdown(); err != nil {
				t.Fatal(err)
			}
			if !shim.Alive(pid, start) {
				t.Fatal("task died with its agent")
			}
			if tc.finishWhileDown {
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				eventually(t, "task exit", func() bool { return !shim.Alive(pid, start) })
			}
			a2 := startAgent(t, fs, dataDir)
			if a2.NodeID() != a1.NodeID() {
				t.Fatalf("node ID changed across restart: %s -> %s", a1.NodeID(), a2.NodeID())
			}
			if !tc.finishWhileDown {
				eventually(t, "re-attach event", func() bool { return hasEvent(fs.alloc(al.ID), EventReattached) })
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			final := fs.waitStatus(al.ID, structs.AllocClientFailed)
			if final.TaskState.ExitCode != 4 {
				t.Errorf("exit code = %d, want 4 (%+v)", final.TaskState.ExitCode, final.TaskState)
			}
			if n := lines(t, marker); n != 1 {
				t.Errorf("task started %d times, want 1", n)
			}
		})
	}
}

func TestRestartReportsLostTask(t *testing.T) {
	fs := newFakeServer(t)
	dataDir := t.TempDir()
	a1 := startAgent(t, fs, dataDir)
	al := testAlloc(a1.NodeID(), structs.JobTypeService, "exec", sh("sleep 300"))
	fs.addAlloc(al)
	running := fs.waitStatus(al.ID, structs.AllocClientRunning)
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// The shim dies without an exit record while no agent watches.
	rec := a1.store.get(al.ID)
	var st struct {
		ShimPID int `json:"shim_pid"`
	}
	if err := jsonUnmarshal(rec.Handle.State, &st); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.ShimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	startAgent(t, fs, dataDir)
	lost := fs.waitStatus(al.ID, structs.AllocClientFailed)
	if !strings.Contains(lost.ClientDescription, "lost") || !hasEvent(lost, EventLost) {
		t.Errorf("alloc = %q %+v", lost.ClientDescription, lost.TaskState)
	}
	start, _ := shim.StartTime(running.TaskState.PID)
	if start != 0 && shim.Alive(running.TaskState.PID, start) {
		t.Error("orphaned task still running")
	}
}

func TestLogs(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	gate := filepath.Join(t.TempDir(), "gate")
	al := testAlloc(a.NodeID(), structs.JobTypeBatch, "exec",
		sh(fmt.Sprintf(`echo one; echo err >&2; while [ ! -f %s ]; do sleep 0.02; done; echo two`, gate)))
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientRunning)
	base := "http://" + a.HTTPAddr() + "/v1/agent/allocation/" + al.ID + "/logs"
	get := func(query string) (int, string) {
		resp, err := http.Get(base + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, "first line", func() bool { _, b := get(""); return b == "one\n" })
	cases := []struct {
		query string
		code  int
		body  string
	}{
		{"?type=stderr", 200, "err\n"},
		{"?offset=2", 200, "e\n"},
		{"?offset=100", 200, ""},
		{"?type=both", 400, "type must be"},
		{"?offset=-1", 400, "offset must be"},
		{"?follow=maybe", 400, "follow must be"},
	}
	for _, tc := range cases {
		code, body := get(tc.query)
		if code != tc.code || !strings.Contains(body, tc.body) || (tc.code == 200 && body != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.query, code, body, tc.code, tc.body)
		}
	}
	resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/agent/allocation/nope/logs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"error"`) {
		t.Errorf("unknown alloc: %d %s", resp.StatusCode, b)
	}

	// Follow: the stream carries output written later and ends when the
	// task is dead and the file drained.
	resp, err = http.Get(base + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "one\n" {
		t.Fatalf("follow first read %q %v", buf, err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "two\n" {
		t.Fatalf("follow rest %q %v", rest, err)
	}
}

func TestSelfAndMetrics(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	al := testAlloc(a.NodeID(), structs.JobTypeService, "mock", nil)
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientRunning)
	get := func(path string) string {
		resp, err := http.Get("http://" + a.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	self := get("/v1/agent/self")
	for _, want := range []string{a.NodeID(), `"cpu":2000`, `"running":1`} {
		if !strings.Contains(self, want) {
			t.Errorf("self = %s, missing %s", self, want)
		}
	}
	m := get("/metrics")
	for _, want := range []string{`gantry_agent_running_tasks{node="n1"} 1`, `gantry_agent_task_starts_total{node="n1"} 1`, "gantry_agent_alloc_update_latency_seconds_count"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics missing %q", want)
		}
	}
}

func TestManyMockAllocs(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	const n = 50
	var ids []string
	for i := 0; i < n; i++ {
		al := testAlloc(a.NodeID(), structs.JobTypeBatch, "mock", map[string]any{"run_for": "20ms", "exit_code": 0})
		al.Index = i
		fs.addAlloc(al)
		ids = append(ids, al.ID)
	}
	for _, id := range ids {
		fs.waitStatus(id, structs.AllocClientComplete)
	}
	// Batching: far fewer requests than transitions (3 per allocation).
	fs.mu.Lock()
	calls := fs.updateCalls
	fs.mu.Unlock()
	t.Logf("%d allocations, %d update requests", n, calls)
	if calls >= 3*n {
		t.Errorf("%d update requests for %d transitions: not batched", calls, 3*n)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestRestartThenStoppedWhileDown(t *testing.T) {
	// The server stops the allocation while the agent is down: the new
	// agent re-attaches and stops the task, without starting it again.
	fs := newFakeServer(t)
	dataDir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "starts")
	a1 := startAgent(t, fs, dataDir)
	al := testAlloc(a1.NodeID(), structs.JobTypeService, "exec", sh(fmt.Sprintf("echo s >> %s; sleep 300", marker)))
	fs.addAlloc(al)
	running := fs.waitStatus(al.ID, structs.AllocClientRunning)
	start, _ := shim.StartTime(running.TaskState.PID)
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	fs.setDesired(al.ID, structs.AllocDesiredStop)
	startAgent(t, fs, dataDir)
	done := fs.waitStatus(al.ID, structs.AllocClientComplete)
	if !hasEvent(done, EventKilled) {
		t.Errorf("events = %+v", done.TaskState.Events)
	}
	if shim.Alive(running.TaskState.PID, start) {
		t.Error("task still running")
	}
	if n := lines(t, marker); n != 1 {
		t.Errorf("task started %d times, want 1", n)
	}
}

func TestSharedRegistryAndStartFailure(t *testing.T) {
	fs := newFakeServer(t)
	reg := prometheus.NewRegistry()
	a1 := startAgent(t, fs, t.TempDir(), func(c *Config) { c.Registerer = reg; c.Name = "n1" })
	// A second agent on the same registry (as gantry dev runs them), and on
	// the first one's HTTP address: Start fails cleanly.
	cfg := DefaultConfig()
	cfg.Servers, cfg.DataDir, cfg.Name = []string{fs.addr()}, t.TempDir(), "n2"
	cfg.Registerer, cfg.HTTPAddr, cfg.Drivers = reg, a1.HTTPAddr(), testDrivers(t)
	a2, err := New(cfg)
	if err != nil {
		t.Fatalf("second agent on a shared registry: %v", err)
	}
	if err := a2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "http_addr") {
		t.Fatalf("Start on a busy address: %v", err)
	}
	if err := a2.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

func TestHeartbeatFailuresCountedAndRetried(t *testing.T) {
	fs := newFakeServer(t)
	fs.ttl = 150 * time.Millisecond
	fs.failHeartbeats = 2
	reg := prometheus.NewRegistry()
	startAgent(t, fs, t.TempDir(), func(c *Config) { c.Registerer = reg })
	eventually(t, "a heartbeat after the failures", func() bool { _, hb := fs.counts(); return hb >= 1 })
	if r, _ := fs.counts(); r != 1 {
		t.Errorf("registrations = %d: a failed heartbeat must not re-register", r)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var failures float64
	for _, mf := range mfs {
		if mf.GetName() == "gantry_agent_heartbeat_failures_total" {
			failures = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if failures != 2 {
		t.Errorf("heartbeat failures = %v, want 2", failures)
	}
}
