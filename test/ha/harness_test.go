// Package ha runs a highly available control plane as real processes: three
// gantry servers and three agents over loopback. The tests kill servers
// with SIGKILL while clients write, and check that nothing acknowledged is
// lost, that scheduling continues under a new leader, that no node is
// marked down by a leader change, and that the job registry's history is
// linearizable (porcupine).
package ha

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

var gantryBin string

func TestMain(m *testing.M) { os.Exit(testutil.MainWithGantry(m, "ha", &gantryBin)) }

type proc = testutil.Proc

func startProc(t *testing.T, name string, args ...string) *proc {
	return testutil.StartProc(t, gantryBin, name, args...)
}

func freePort(t *testing.T) int { return testutil.FreePort(t) }

// haCluster is three (or n) server processes and their agents.
type haCluster struct {
	t         *testing.T
	dir       string
	httpPorts []int
	raftPorts []int
	servers   []*proc
	agents    []*proc
	hc        *http.Client
	client    *api.Client // knows every server
}

func newHACluster(t *testing.T, n int) *haCluster {
	t.Helper()
	c := &haCluster{t: t, dir: t.TempDir(), servers: make([]*proc, n)}
	for range n {
		c.httpPorts = append(c.httpPorts, freePort(t))
		c.raftPorts = append(c.raftPorts, freePort(t))
	}
	c.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	t.Cleanup(c.hc.CloseIdleConnections)
	c.client = c.clientFor(c.allAddrs()...)
	for i := range n {
		c.startServer(i)
	}
	return c
}

func (c *haCluster) httpAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.httpPorts[i]) }

func (c *haCluster) allAddrs() []string {
	var out []string
	for i := range c.httpPorts {
		out = append(out, c.httpAddr(i))
	}
	return out
}

func (c *haCluster) clientFor(addrs ...string) *api.Client {
	cl, err := api.NewClient(api.Config{Address: strings.Join(addrs, ","), HTTPClient: c.hc})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// startServer starts (or restarts, with the same data dir) server i.
func (c *haCluster) startServer(i int) {
	c.t.Helper()
	var join []string
	for j := range c.httpPorts {
		if j != i {
			join = append(join, c.httpAddr(j))
		}
	}
	c.servers[i] = startProc(c.t, fmt.Sprintf("server-%d", i+1), "server",
		"--name", fmt.Sprintf("server-%d", i+1),
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("server-%d", i+1)),
		"--http-addr", c.httpAddr(i),
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", c.raftPorts[i]),
		"--bootstrap-expect", strconv.Itoa(len(c.httpPorts)),
		"--join", strings.Join(join, ","),
		// The production TTL: on a loaded 2-core CI machine a shorter one
		// can expire for reasons that have nothing to do with failover.
		"--heartbeat-ttl", "10s",
		"--reconcile-interval", "5s",
		"--raft-timeout", raftTimeout(),
	)
}

func (c *haCluster) startAgents(n int) {
	c.t.Helper()
	for i := range n {
		name := fmt.Sprintf("agent-%d", i+1)
		c.agents = append(c.agents, startProc(c.t, name, "agent",
			"--servers", strings.Join(c.allAddrs(), ","),
			"--data-dir", filepath.Join(c.dir, name),
			"--name", name,
			"--cpu", "4000", "--memory", "8192",
			"--http-addr", "127.0.0.1:0",
		))
	}
}

// leader waits until the running servers agree on one leader and returns
// its position.
func (c *haCluster) leader() int {
	c.t.Helper()
	idx := -1
	c.waitFor(60*time.Second, "an agreed leader", func() (bool, string) {
		ids := map[string]int{}
		leaderID := ""
		var seen []string
		for i, p := range c.servers {
			if p == nil {
				continue
			}
			info, err := c.self(i)
			if err != nil {
				seen = append(seen, err.Error())
				continue
			}
			ids[info.Member.ID] = i
			seen = append(seen, fmt.Sprintf("%s->%s", info.Member.Name, info.LeaderID))
			if leaderID == "" {
				leaderID = info.LeaderID
			} else if leaderID != info.LeaderID {
				return false, strings.Join(seen, " ")
			}
		}
		i, ok := ids[leaderID]
		if !ok || leaderID == "" {
			return false, strings.Join(seen, " ")
		}
		// The leader answers consistent reads only once ready.
		if _, _, err := c.clientFor(c.httpAddr(i)).ListJobs(context.Background(), nil); err != nil {
			return false, err.Error()
		}
		idx = i
		return true, ""
	})
	return idx
}

func (c *haCluster) self(i int) (*api.ServerSelf, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.clientFor(c.httpAddr(i)).ServerSelf(ctx)
}

func (c *haCluster) waitReadyNodes(n int) {
	c.t.Helper()
	c.waitFor(60*time.Second, fmt.Sprintf("%d ready nodes", n), func() (bool, string) {
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

// waitFor polls with a generous deadline: the machine is shared.
func (c *haCluster) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	testutil.WaitFor(c.t, timeout, 100*time.Millisecond, what, cond)
}

// metric reads one un-labelled counter from a server's /metrics.
func (c *haCluster) metric(i int, name string) (float64, error) {
	resp, err := c.hc.Get("http://" + c.httpAddr(i) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func mockJob(name string, count int) *api.Job {
	return &api.Job{Name: name, Count: count, Driver: "mock",
		Resources: api.Resources{CPU: 10, MemoryMB: 8}}
}

// raftTimeout is the servers' --raft-timeout: GANTRY_HA_RAFT_TIMEOUT, or
// the default of 1s.
func raftTimeout() string {
	if v := os.Getenv("GANTRY_HA_RAFT_TIMEOUT"); v != "" {
		return v
	}
	return "1s"
}
