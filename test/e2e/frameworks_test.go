package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

// The example framework (examples/frameworks/workqueue) as its own
// process against real servers and agents, all under --scheduler
// two-level: its restart within its failover timeout keeps its tasks,
// after it they are killed, and a leader change in a three-server cluster
// launches nothing twice.

var (
	workqueueOnce sync.Once
	workqueueBin  string
	workqueueErr  error
)

// buildWorkqueue builds the example framework once per test binary.
func buildWorkqueue(t *testing.T) string {
	t.Helper()
	workqueueOnce.Do(func() {
		dir := filepath.Dir(gantryBin) // removed with the gantry binary
		workqueueBin = filepath.Join(dir, "workqueue")
		cmd := exec.Command("go", "build", "-o", workqueueBin, "../../examples/frameworks/workqueue")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			workqueueErr = fmt.Errorf("building the workqueue example: %w\n%s", err, out)
		}
	})
	if workqueueErr != nil {
		t.Fatal(workqueueErr)
	}
	return workqueueBin
}

// workqueueSetup writes n commands that each append a line to
// <dir>/runs/<index> and then sleep, and returns the commands file.
func workqueueSetup(t *testing.T, dir string, n int, sleep string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "echo run >> %s/runs/%d; sleep %s\n", dir, i, sleep)
	}
	path := filepath.Join(dir, "commands.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runsOf counts how often each command started.
func runsOf(t *testing.T, dir string, n int) []int {
	out := make([]int, n)
	for i := range n {
		out[i] = countLines(t, filepath.Join(dir, "runs", strconv.Itoa(i)))
	}
	return out
}

func startWorkqueue(t *testing.T, name, addrs, commands, state, failover string, cpu int) *proc {
	t.Helper()
	return testutil.StartProc(t, buildWorkqueue(t), name,
		"--address", addrs, "--commands", commands, "--state", state,
		"--failover-timeout", failover, "--cpu", strconv.Itoa(cpu), "--memory", "32", "--retries", "1", "-v")
}

// waitExit waits for a framework process to exit and returns its error.
func waitExit(t *testing.T, p *proc, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.Done:
		if code := exitCode(p); code != 0 {
			return fmt.Errorf("%s exited with status %d", p.Name, code)
		}
		return nil
	case <-time.After(limit):
		// Its goroutines, to see where it is stuck.
		_ = p.Cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.Done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("%s did not finish within %s:\n%s", p.Name, limit, testutil.Tail(p.Out.String(), 20000))
		return nil
	}
}

func exitCode(p *proc) int {
	if p.Cmd.ProcessState == nil {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

func twoLevelCluster(t *testing.T, agents int, cpu int) *cluster {
	c := newCluster(t)
	c.serverArgs = []string{"--scheduler", "two-level"}
	c.startServer()
	for i := range agents {
		c.startAgent(fmt.Sprintf("a%d", i+1), cpu, 4096)
	}
	c.waitReadyNodes(agents)
	return c
}

// frameworkTasks returns the states of a framework's tasks by task ID.
func frameworkTasks(c *api.Client, name string) (map[string]string, *api.FrameworkDetail, error) {
	d, err := c.Framework(context.Background(), name)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]string{}
	for _, t := range d.Tasks {
		out[t.TaskID] = string(t.State)
	}
	return out, d, nil
}

// TestFrameworkRestartKeepsTasks: the framework is killed while its tasks
// run and restarted within its failover timeout with its saved ID: the
// tasks keep running meanwhile, the restarted framework adopts them
// (reconciliation), and every command runs exactly once.
func TestFrameworkRestartKeepsTasks(t *testing.T) {
	c := twoLevelCluster(t, 2, 1000)
	dir := t.TempDir()
	const n = 4
	cmds := workqueueSetup(t, dir, n, "8")
	state := filepath.Join(dir, "wq.id")
	fw := startWorkqueue(t, "workqueue", c.addr(), cmds, state, "2m", 200)
	c.waitFor(60*time.Second, "every command running", func() (bool, string) {
		runs := runsOf(t, dir, n)
		for _, r := range runs {
			if r == 0 {
				return false, fmt.Sprint(runs)
			}
		}
		return true, ""
	})
	fw.Kill9()
	c.waitFor(30*time.Second, "the framework seen away with its tasks running", func() (bool, string) {
		tasks, d, err := frameworkTasks(c.client, "workqueue")
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, s := range tasks {
			if s == "TASK_RUNNING" {
				running++
			}
		}
		return !d.Framework.Connected && running == n, fmt.Sprintf("connected %v, tasks %v", d.Framework.Connected, tasks)
	})
	fw2 := startWorkqueue(t, "workqueue (restarted)", c.addr(), cmds, state, "2m", 200)
	if err := waitExit(t, fw2, 3*time.Minute); err != nil {
		t.Fatalf("restarted framework: %v\n%s", err, fw2.Out.String())
	}
	out := fw2.Out.String()
	if !strings.Contains(out, fmt.Sprintf("done: %d finished, 0 failed", n)) {
		t.Fatalf("restarted framework's output:\n%s", out)
	}
	for i, r := range runsOf(t, dir, n) {
		if r != 1 {
			t.Errorf("command %d ran %d times, want once", i, r)
		}
	}
	jobs, _, err := c.client.ListJobs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if strings.HasSuffix(j.ID, "-1") {
			t.Errorf("job %s: a second attempt was launched", j.ID)
		}
	}
}

// TestFrameworkFailoverTimeoutKillsTasks: a framework away longer than its
// failover timeout is removed and its tasks are killed; it cannot come
// back under the same ID.
func TestFrameworkFailoverTimeoutKillsTasks(t *testing.T) {
	c := twoLevelCluster(t, 1, 2000)
	dir := t.TempDir()
	const n = 2
	cmds := workqueueSetup(t, dir, n, "300")
	state := filepath.Join(dir, "wq.id")
	fw := startWorkqueue(t, "workqueue", c.addr(), cmds, state, "3s", 200)
	c.waitFor(60*time.Second, "both commands running", func() (bool, string) {
		runs := runsOf(t, dir, n)
		return runs[0] == 1 && runs[1] == 1, fmt.Sprint(runs)
	})
	fw.Kill9()
	c.waitFor(60*time.Second, "the tasks killed after the failover timeout", func() (bool, string) {
		var live []string
		for i := range n {
			for _, a := range c.liveAllocs(fmt.Sprintf("workqueue.cmd-%d-0", i)) {
				live = append(live, a.Name+":"+a.ClientStatus)
			}
		}
		return len(live) == 0, strings.Join(live, " ")
	})
	_, err := c.client.Framework(context.Background(), "workqueue")
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 410 && ae.StatusCode != 404 {
		t.Fatalf("the removed framework: %v, want it gone", err)
	}
	fw2 := startWorkqueue(t, "workqueue (too late)", c.addr(), cmds, state, "3s", 200)
	err = waitExit(t, fw2, time.Minute)
	if err == nil || !strings.Contains(fw2.Out.String(), "removed") {
		t.Fatalf("a framework restarted after its failover timeout: %v\n%s", err, fw2.Out.String())
	}
}

// TestFrameworkSurvivesLeaderChange: three servers, the framework given
// all of them. The leader is killed while the first wave of commands runs
// (the second wave waits for room): the framework subscribes again through
// another server, the new leader sends it offers for the second wave, and
// every command runs exactly once.
func TestFrameworkSurvivesLeaderChange(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	cmds := workqueueSetup(t, dir, n, "6")
	hc := newThreeServers(t)
	hc.startAgents(2, 1000)
	hc.waitReadyNodes(2)
	leader := hc.leader()
	state := filepath.Join(dir, "wq.id")
	fw := startWorkqueue(t, "workqueue", strings.Join(hc.allAddrs(), ","), cmds, state, "2m", 400)
	hc.waitFor(90*time.Second, "the first wave running", func() (bool, string) {
		runs := runsOf(t, dir, n)
		started := 0
		for _, r := range runs {
			started += r
		}
		return started >= 4, fmt.Sprint(runs)
	})
	hc.servers[leader].Kill9()
	hc.servers[leader] = nil
	newLeader := hc.leader()
	if newLeader == leader {
		t.Fatal("the killed server is still the leader")
	}
	if err := waitExit(t, fw, 4*time.Minute); err != nil {
		t.Fatalf("framework: %v\n%s", err, fw.Out.String())
	}
	out := fw.Out.String()
	if !strings.Contains(out, fmt.Sprintf("done: %d finished, 0 failed", n)) {
		t.Fatalf("framework's output:\n%s", out)
	}
	if k := strings.Count(out, "subscribed as"); k < 2 {
		t.Fatalf("subscribed %d times, want again after the leader change:\n%s", k, out)
	}
	// The second wave could only start once the first freed its room,
	// after the leader was killed: on the new leader's offers.
	if after := out[strings.LastIndex(out, "subscribed as"):]; !strings.Contains(after, "TASK_STAGING on") {
		t.Fatalf("nothing launched after subscribing to the new leader:\n%s", out)
	}
	for i, r := range runsOf(t, dir, n) {
		if r != 1 {
			t.Errorf("command %d ran %d times, want once", i, r)
		}
	}
}

// threeServers is three server processes (two-level) and their agents.
type threeServers struct {
	t         *testing.T
	dir       string
	httpPorts []int
	servers   []*proc
	client    *api.Client
}

func newThreeServers(t *testing.T) *threeServers {
	t.Helper()
	c := &threeServers{t: t, dir: t.TempDir(), servers: make([]*proc, 3)}
	t.Cleanup(func() { killTasksUnder(c.dir) })
	raft := make([]int, 3)
	for i := range 3 {
		c.httpPorts = append(c.httpPorts, freePort(t))
		raft[i] = freePort(t)
	}
	var err error
	if c.client, err = api.NewClient(api.Config{Address: strings.Join(c.allAddrs(), ",")}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var join []string
		for j := range 3 {
			if j != i {
				join = append(join, c.allAddrs()[j])
			}
		}
		name := fmt.Sprintf("server-%d", i+1)
		c.servers[i] = startProc(t, name, "server", "--name", name,
			"--data-dir", filepath.Join(c.dir, name),
			"--http-addr", c.allAddrs()[i], "--raft-addr", fmt.Sprintf("127.0.0.1:%d", raft[i]),
			"--bootstrap-expect", "3", "--join", strings.Join(join, ","),
			"--heartbeat-ttl", "10s", "--reconcile-interval", "5s", "--raft-timeout", "1s",
			"--scheduler", "two-level")
	}
	return c
}

func (c *threeServers) allAddrs() []string {
	var out []string
	for _, p := range c.httpPorts {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return out
}

func (c *threeServers) startAgents(n, cpu int) {
	for i := range n {
		name := fmt.Sprintf("agent-%d", i+1)
		startProc(c.t, name, "agent", "--servers", strings.Join(c.allAddrs(), ","),
			"--data-dir", filepath.Join(c.dir, name), "--name", name,
			"--cpu", strconv.Itoa(cpu), "--memory", "4096", "--http-addr", "127.0.0.1:0")
	}
}

func (c *threeServers) waitFor(limit time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	testutil.WaitFor(c.t, limit, 200*time.Millisecond, what, cond)
}

func (c *threeServers) waitReadyNodes(n int) {
	c.t.Helper()
	c.waitFor(60*time.Second, fmt.Sprintf("%d ready nodes", n), func() (bool, string) {
		nodes, _, err := c.client.ListNodes(context.Background(), nil)
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, nd := range nodes {
			if nd.Status == api.NodeStatusReady {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d ready", ready)
	})
}

// leader waits until the running servers agree on one leader that answers
// consistent reads, and returns its position.
func (c *threeServers) leader() int {
	c.t.Helper()
	idx := -1
	c.waitFor(60*time.Second, "an agreed leader", func() (bool, string) {
		leaderID := ""
		ids := map[string]int{}
		for i, p := range c.servers {
			if p == nil {
				continue
			}
			cl, err := api.NewClient(api.Config{Address: c.allAddrs()[i]})
			if err != nil {
				return false, err.Error()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			info, err := cl.ServerSelf(ctx)
			cancel()
			if err != nil {
				return false, err.Error()
			}
			ids[info.Member.ID] = i
			if leaderID == "" {
				leaderID = info.LeaderID
			} else if leaderID != info.LeaderID {
				return false, "servers disagree"
			}
		}
		i, ok := ids[leaderID]
		if !ok {
			return false, "no leader among the running servers"
		}
		cl, _ := api.NewClient(api.Config{Address: c.allAddrs()[i]})
		if _, _, err := cl.ListJobs(context.Background(), nil); err != nil {
			return false, err.Error()
		}
		idx = i
		return true, ""
	})
	return idx
}
