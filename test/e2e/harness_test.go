// Package e2e runs the built gantry binary as real processes (a server and
// agents over loopback) and drives it through its HTTP API and its CLI.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
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

// gantryBin is the binary under test, built once in TestMain.
var gantryBin string

func TestMain(m *testing.M) { os.Exit(testutil.MainWithGantry(m, "e2e", &gantryBin)) }

type proc = testutil.Proc

func startProc(t *testing.T, name string, args ...string) *proc {
	return testutil.StartProc(t, gantryBin, name, args...)
}

// freePort returns a loopback port free now and not handed out before in
// this process: from GANTRY_E2E_PORTS ("low-high", inclusive) when set,
// so that a run on a shared machine keeps to its own range, else
// testutil.FreePort's.
func freePort(t *testing.T) int {
	t.Helper()
	r := os.Getenv("GANTRY_E2E_PORTS")
	if r == "" {
		return testutil.FreePort(t)
	}
	lo, hi, ok := strings.Cut(r, "-")
	low, err1 := strconv.Atoi(lo)
	high, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || low > high {
		t.Fatalf("GANTRY_E2E_PORTS=%q: want low-high", r)
	}
	rangeMu.Lock()
	defer rangeMu.Unlock()
	for p := low; p <= high; p++ {
		if rangeHanded[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		rangeHanded[p] = true
		return p
	}
	t.Fatalf("GANTRY_E2E_PORTS=%s: no free port left", r)
	return 0
}

var (
	rangeMu     sync.Mutex
	rangeHanded = map[int]bool{}
)

// cluster is one server and its agents, all real processes.
type cluster struct {
	t        *testing.T
	dir      string
	httpPort int
	raftPort int
	server   *proc
	agents   map[string]*proc
	client   *api.Client
	ttl      string
	// serverArgs and agentArgs are added to every server's and agent's
	// flags; token is the CLI's GANTRY_TOKEN ("" none).
	serverArgs, agentArgs []string
	token                 string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), httpPort: freePort(t), raftPort: freePort(t),
		agents: map[string]*proc{}, ttl: "2s"}
	var err error
	c.client, err = api.NewClient(api.Config{Address: c.addr()})
	if err != nil {
		t.Fatal(err)
	}
	// Tasks run under task-shim in their own sessions and outlive agents by
	// design; make sure none outlives the test.
	t.Cleanup(func() { killTasksUnder(c.dir) })
	return c
}

func (c *cluster) addr() string { return fmt.Sprintf("http://127.0.0.1:%d", c.httpPort) }

func (c *cluster) startServer() {
	c.t.Helper()
	args := []string{"server",
		"--data-dir", filepath.Join(c.dir, "server"),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", c.httpPort),
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", c.raftPort),
		"--heartbeat-ttl", c.ttl,
		"--reconcile-interval", "2s",
	}
	c.server = startProc(c.t, "server", append(args, c.serverArgs...)...)
	c.waitFor(30*time.Second, "server to elect itself leader", func() (bool, string) {
		l, err := c.client.Leader(context.Background())
		return err == nil && l != "", fmt.Sprint(l, err)
	})
}

// startAgent starts an agent with a fixed size so placement is predictable.
func (c *cluster) startAgent(name string, cpu, memMB int, labels ...string) *proc {
	c.t.Helper()
	args := []string{"agent",
		"--servers", fmt.Sprintf("127.0.0.1:%d", c.httpPort),
		"--data-dir", filepath.Join(c.dir, "agent-"+name),
		"--name", name,
		"--cpu", strconv.Itoa(cpu),
		"--memory", strconv.Itoa(memMB),
		"--http-addr", "127.0.0.1:0",
	}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	args = append(args, c.agentArgs...)
	p := startProc(c.t, "agent "+name, args...)
	c.agents[name] = p
	return p
}

func (c *cluster) waitReadyNodes(n int) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("%d ready nodes", n), func() (bool, string) {
		nodes, _, err := c.client.ListNodes(context.Background(), nil)
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range nodes {
			if n.Status == api.NodeStatusReady {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d ready of %d", ready, len(nodes))
	})
}

// waitFor polls cond until it holds; the deadline is generous because the
// machine is shared, and no test asserts on how fast it happened.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	testutil.WaitFor(c.t, timeout, 200*time.Millisecond, what, cond)
}

// liveAllocs returns a job's allocations that the server wants running and
// that have not finished.
func (c *cluster) liveAllocs(job string) []*api.Allocation {
	c.t.Helper()
	allocs, _, err := c.client.JobAllocations(context.Background(), job, nil)
	if err != nil {
		c.t.Fatalf("listing allocations of %s: %v", job, err)
	}
	var live []*api.Allocation
	for _, a := range allocs {
		if !a.Terminal() {
			live = append(live, a)
		}
	}
	return live
}

func (c *cluster) waitRunning(job string, n int) []*api.Allocation {
	c.t.Helper()
	var running []*api.Allocation
	c.waitFor(60*time.Second, fmt.Sprintf("%d running allocations of %s", n, job), func() (bool, string) {
		running = running[:0]
		var states []string
		for _, a := range c.liveAllocs(job) {
			states = append(states, a.Name+"@"+a.NodeName+":"+a.ClientStatus)
			if a.ClientStatus == api.AllocClientRunning {
				running = append(running, a)
			}
		}
		return len(running) == n, strings.Join(states, " ")
	})
	return running
}

// gantry runs the CLI against the cluster and returns its combined output.
func (c *cluster) gantry(args ...string) (string, error) {
	cmd := exec.Command(gantryBin, args...)
	cmd.Env = append(os.Environ(), "GANTRY_ADDR="+c.addr(), "GANTRY_TOKEN="+c.token, "GANTRY_NAMESPACE=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// killTasksUnder kills every process whose command line or environment
// mentions dir: task shims and the test tasks, which all live there.
func killTasksUnder(dir string) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(environ, []byte(dir)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// pidAlive reports whether a process exists.
func pidAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}
