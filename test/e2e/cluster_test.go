package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// execJob is a service job whose every start appends a line to
// <dir>/starts.log, so tests can count how often tasks were started.
func execJob(name, dir string, count int) *api.Job {
	script := fmt.Sprintf(`echo "$GANTRY_ALLOC_ID" >> %s/starts.log; echo "hello from $GANTRY_ALLOC_INDEX"; while true; do sleep 1; done`, dir)
	return &api.Job{
		Name:      name,
		Type:      api.JobTypeService,
		Count:     count,
		Placement: "spread",
		Resources: api.Resources{CPU: 100, MemoryMB: 32},
		Driver:    "exec",
		Config:    map[string]any{"command": "/bin/sh", "args": []any{"-c", script}},
		Env:       map[string]string{"E2E_DIR": dir},
	}
}

func mockJob(name string, prio, count int, cpu int64) *api.Job {
	return &api.Job{
		Name: name, Type: api.JobTypeService, Priority: prio, Count: count,
		Resources: api.Resources{CPU: cpu, MemoryMB: 16},
		Driver:    "mock",
		Config:    map[string]any{},
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func register(t *testing.T, c *cluster, job *api.Job) {
	t.Helper()
	if _, err := c.client.RegisterJob(context.Background(), job); err != nil {
		t.Fatalf("registering %s: %v", job.Name, err)
	}
}

// A service job of count 5 on 3 agents runs 5 real processes; when an agent
// is killed with SIGKILL its allocations are replaced on the others, and
// when it comes back it stops the tasks that were replaced.
func TestServiceJobSurvivesAgentKill(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	for i, zone := range []string{"a", "b", "c"} {
		c.startAgent(fmt.Sprintf("node-%d", i+1), 1000, 1024, "zone="+zone)
	}
	c.waitReadyNodes(3)

	register(t, c, execJob("web", c.dir, 5))
	running := c.waitRunning("web", 5)
	for _, a := range running {
		if !pidAlive(a.TaskState.PID) {
			t.Fatalf("%s reports running with pid %d, which does not exist", a.Name, a.TaskState.PID)
		}
	}

	victim := running[0].NodeName
	var orphans []int // tasks left behind on the killed node
	for _, a := range running {
		if a.NodeName == victim {
			orphans = append(orphans, a.TaskState.PID)
		}
	}
	c.agents[victim].Kill9()

	c.waitFor(60*time.Second, "replacement of "+victim+"'s allocations", func() (bool, string) {
		live := c.liveAllocs("web")
		n := 0
		for _, a := range live {
			if a.NodeName == victim {
				return false, "still live on " + victim
			}
			if a.ClientStatus == api.AllocClientRunning {
				n++
			}
		}
		return n == 5, fmt.Sprintf("%d running elsewhere", n)
	})
	node, _, err := c.client.Node(context.Background(), victim, nil)
	if err != nil {
		t.Fatal(err)
	}
	if node.Status != api.NodeStatusDown {
		t.Fatalf("killed node %s has status %s, want down", victim, node.Status)
	}

	// The node comes back: the agent re-attaches to the tasks it left
	// running, learns they were replaced, and stops them.
	c.startAgent(victim, 1000, 1024)
	c.waitFor(60*time.Second, "tasks replaced while "+victim+" was down to be stopped", func() (bool, string) {
		for _, pid := range orphans {
			if pidAlive(pid) {
				return false, fmt.Sprintf("pid %d still alive", pid)
			}
		}
		return true, ""
	})
	if got := len(c.waitRunning("web", 5)); got != 5 {
		t.Fatalf("running = %d, want 5", got)
	}
}

// A server restart keeps jobs and allocations and starts no task twice; an
// agent restart re-attaches to its tasks instead of starting them again.
func TestRestartsDuplicateNothing(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("node-1", 1000, 1024)
	c.startAgent("node-2", 1000, 1024)
	c.waitReadyNodes(2)

	register(t, c, execJob("api", c.dir, 3))
	before := c.waitRunning("api", 3)
	starts := filepath.Join(c.dir, "starts.log")
	c.waitFor(30*time.Second, "3 task starts", func() (bool, string) {
		n := countLines(t, starts)
		return n == 3, fmt.Sprint(n)
	})

	c.server.Kill9()
	c.startServer()
	after := c.waitRunning("api", 3)
	if ids(before) != ids(after) {
		t.Fatalf("allocations changed across server restart:\nbefore %s\nafter  %s", ids(before), ids(after))
	}

	c.agents["node-1"].Kill9()
	c.startAgent("node-1", 1000, 1024)
	// Give the restarted agent time to sync with the server before checking
	// nothing was started again: wait until it has heartbeated as ready.
	c.waitReadyNodes(2)
	again := c.waitRunning("api", 3)
	if ids(before) != ids(again) {
		t.Fatalf("allocations changed across agent restart:\nbefore %s\nafter  %s", ids(before), ids(again))
	}
	for i := range before {
		if pidOf(again, before[i].ID) != before[i].TaskState.PID {
			t.Fatalf("%s: pid changed from %d to %d: task was restarted", before[i].Name, before[i].TaskState.PID, pidOf(again, before[i].ID))
		}
	}
	if n := countLines(t, starts); n != 3 {
		t.Fatalf("tasks were started %d times, want 3", n)
	}
}

func ids(allocs []*api.Allocation) string {
	var s []string
	for _, a := range allocs {
		s = append(s, a.ID)
	}
	sortStrings(s)
	return strings.Join(s, ",")
}

func pidOf(allocs []*api.Allocation, id string) int {
	for _, a := range allocs {
		if a.ID == id {
			return a.TaskState.PID
		}
	}
	return -1
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// A batch job runs to completion and reports each task's exit code.
func TestBatchJobReportsExitCodes(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("node-1", 2000, 1024)
	c.waitReadyNodes(1)

	job := &api.Job{
		Name: "report", Type: api.JobTypeBatch, Count: 3,
		Resources: api.Resources{CPU: 100, MemoryMB: 16},
		Driver:    "exec",
		// Copy 2 fails with exit code 3; the others succeed.
		Config:     map[string]any{"command": "/bin/sh", "args": []any{"-c", `test "$GANTRY_ALLOC_INDEX" != 2 || exit 3`}},
		Restart:    api.RestartPolicy{Attempts: 0, Delay: api.Duration(time.Millisecond)},
		Reschedule: api.ReschedulePolicy{Attempts: 0, Delay: api.Duration(time.Millisecond)},
		Env:        map[string]string{"E2E_DIR": c.dir},
	}
	// An all-zero restart policy means "defaults"; one attempt of delay
	// 1ms and no restarts is what this test wants.
	job.Restart.Interval = api.Duration(time.Minute)
	job.Reschedule.Unlimited = false
	register(t, c, job)

	var allocs []*api.Allocation
	c.waitFor(60*time.Second, "batch copies to finish", func() (bool, string) {
		var err error
		allocs, _, err = c.client.JobAllocations(context.Background(), "report", nil)
		if err != nil {
			return false, err.Error()
		}
		done := 0
		var st []string
		for _, a := range allocs {
			st = append(st, a.Name+":"+a.ClientStatus)
			if a.ClientTerminal() {
				done++
			}
		}
		return done >= 3, strings.Join(st, " ")
	})
	byIndex := map[int]*api.Allocation{}
	for _, a := range allocs {
		byIndex[a.Index] = a
	}
	for idx, want := range map[int]struct {
		status string
		code   int
	}{0: {api.AllocClientComplete, 0}, 1: {api.AllocClientComplete, 0}, 2: {api.AllocClientFailed, 3}} {
		a := byIndex[idx]
		if a == nil {
			t.Fatalf("no allocation for index %d", idx)
		}
		if a.ClientStatus != want.status || a.TaskState.ExitCode != want.code {
			t.Errorf("%s: status %s exit %d, want %s exit %d", a.Name, a.ClientStatus, a.TaskState.ExitCode, want.status, want.code)
		}
	}
}

// A job that cannot fit says why, per filter.
func TestUnplaceableJobReportsWhy(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("node-1", 1000, 512, "zone=a")
	c.startAgent("node-2", 1000, 512, "zone=b")
	c.waitReadyNodes(2)

	tests := []struct {
		job  *api.Job
		want string
	}{
		{func() *api.Job {
			j := mockJob("zoned", 50, 1, 100)
			j.Constraints = []api.Constraint{{Label: "zone", Operator: "=", Value: "z"}}
			return j
		}(), "constraint zone = z"},
		{func() *api.Job {
			j := mockJob("huge", 50, 1, 100)
			j.Resources.MemoryMB = 4096
			return j
		}(), "memory"},
	}
	for _, tc := range tests {
		register(t, c, tc.job)
		c.waitFor(30*time.Second, tc.job.Name+" placement failure", func() (bool, string) {
			st, _, err := c.client.JobStatus(context.Background(), tc.job.Name, nil)
			if err != nil {
				return false, err.Error()
			}
			if st.PlacementFailure == nil {
				return false, "no placement failure yet"
			}
			return strings.Contains(st.PlacementFailure.Message, tc.want), st.PlacementFailure.Message
		})
	}
}

// A high-priority job preempts a low-priority one when nothing else fits;
// the evicted copy goes back to the queue and waits.
func TestHighPriorityPreemptsLow(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("node-1", 1000, 1024)
	c.waitReadyNodes(1)

	register(t, c, mockJob("low", 10, 2, 500))
	c.waitRunning("low", 2)
	register(t, c, mockJob("high", 90, 1, 500))
	c.waitRunning("high", 1)

	allocs, _, err := c.client.JobAllocations(context.Background(), "low", nil)
	if err != nil {
		t.Fatal(err)
	}
	evicted := 0
	for _, a := range allocs {
		if a.DesiredStatus == api.AllocDesiredEvict {
			evicted++
			if a.PreemptedBy == "" {
				t.Errorf("%s evicted without naming the preempting allocation", a.Name)
			}
		}
	}
	if evicted != 1 {
		t.Fatalf("evicted low-priority allocations = %d, want 1", evicted)
	}
	c.waitFor(30*time.Second, "low to report its unplaced copy", func() (bool, string) {
		st, _, err := c.client.JobStatus(context.Background(), "low", nil)
		if err != nil || st.PlacementFailure == nil {
			return false, fmt.Sprint(err)
		}
		return st.PlacementFailure.Unplaced == 1, st.PlacementFailure.Message
	})
}

// An invalid document is refused with the field named, and changes nothing.
func TestInvalidJobChangesNothing(t *testing.T) {
	c := newCluster(t)
	c.startServer()

	good := mockJob("keep", 50, 1, 100)
	register(t, c, good)
	before, _, err := c.client.Job(context.Background(), "keep", nil)
	if err != nil {
		t.Fatal(err)
	}

	bad := mockJob("keep", 50, -1, 100)
	bad.Driver = "nope"
	_, err = c.client.RegisterJob(context.Background(), bad)
	var apiErr *api.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("invalid job: got %v, want a 400", err)
	}
	fields := map[string]bool{}
	for _, f := range apiErr.Fields {
		fields[f.Field] = true
	}
	if !fields["count"] || !fields["driver"] {
		t.Fatalf("error fields = %+v, want count and driver named", apiErr.Fields)
	}
	after, _, err := c.client.Job(context.Background(), "keep", nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.ModifyIndex != before.ModifyIndex || after.Count != 1 || after.Driver != "mock" {
		t.Fatalf("job changed by a rejected update: %+v", after)
	}
}
