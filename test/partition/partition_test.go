// Package partition runs three gantry servers as Docker containers on a
// private network and cuts the leader off with `docker network disconnect`.
// The image is built locally FROM scratch with the static binary; the test
// skips with a message where Docker is not available.
package partition

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/test/lincheck"
)

var dockerSkip string

func TestMain(m *testing.M) {
	flag.Parse()
	switch {
	case testing.Short():
		dockerSkip = "-short mode"
	case exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run() != nil:
		dockerSkip = "Docker is not available (no docker CLI or no daemon)"
	}
	os.Exit(m.Run())
}

// docker runs a docker command and returns its trimmed output.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := strings.TrimSpace(out.String())
	if err != nil {
		return s, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, s)
	}
	return s, nil
}

type dockerCluster struct {
	t       *testing.T
	tag     string
	image   string
	network string
	names   []string
	ips     []string
	hc      *http.Client
}

// newDockerCluster builds the image and starts n servers on a new network
// with fixed addresses (each server's --raft-addr must be known up front).
func newDockerCluster(t *testing.T, n int) *dockerCluster {
	t.Helper()
	ctx := context.Background()
	tag := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	c := &dockerCluster{t: t, tag: tag,
		hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(c.hc.CloseIdleConnections)

	c.image = buildImage(t, "gantry-partition-test:"+tag)
	var subnet string
	c.network, subnet = createNetwork(t, "gantry-partition-"+tag)
	for i := range n {
		c.names = append(c.names, fmt.Sprintf("gantry-partition-%s-s%d", tag, i+1))
		c.ips = append(c.ips, fmt.Sprintf("%s.%d", subnet, 11+i))
	}
	removeContainers(t, c.names)
	for i := range n {
		var join []string
		for j := range n {
			if j != i {
				join = append(join, c.ips[j]+":4646")
			}
		}
		_, err := docker(ctx, "run", "-d", "--name", c.names[i], "--network", c.network, "--ip", c.ips[i],
			c.image, "server",
			"--name", fmt.Sprintf("s%d", i+1),
			"--data-dir", "/data",
			"--http-addr", "0.0.0.0:4646",
			"--advertise-http", c.ips[i]+":4646",
			"--raft-addr", c.ips[i]+":4647",
			"--bootstrap-expect", fmt.Sprint(n),
			"--join", strings.Join(join, ","),
			"--heartbeat-ttl", "5s",
		)
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *dockerCluster) client(idx ...int) *api.Client {
	var addrs []string
	for _, i := range idx {
		addrs = append(addrs, "http://"+c.ips[i]+":4646")
	}
	cl, err := api.NewClient(api.Config{Address: strings.Join(addrs, ","), HTTPClient: c.hc})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *dockerCluster) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	waitFor(c.t, timeout, what, cond)
}

// leaderAmong waits until the given servers agree on a leader among them.
func (c *dockerCluster) leaderAmong(idx ...int) int {
	c.t.Helper()
	leader := -1
	c.waitFor(90*time.Second, fmt.Sprintf("servers %v to agree on a leader", idx), func() (bool, string) {
		ids := map[string]int{}
		var lid string
		var seen []string
		for _, i := range idx {
			info, err := c.client(i).ServerSelf(context.Background())
			if err != nil {
				return false, err.Error()
			}
			ids[info.Member.ID] = i
			seen = append(seen, info.Member.Name+"->"+info.LeaderID)
			if lid == "" {
				lid = info.LeaderID
			} else if lid != info.LeaderID {
				return false, strings.Join(seen, " ")
			}
		}
		i, ok := ids[lid]
		if !ok {
			return false, strings.Join(seen, " ")
		}
		if _, _, err := c.client(i).ListJobs(context.Background(), nil); err != nil {
			return false, err.Error()
		}
		leader = i
		return true, ""
	})
	return leader
}

// execCLI runs the gantry CLI inside container i against its own API:
// it works while the container is cut off from every network.
func (c *dockerCluster) execCLI(ctx context.Context, i int, stdin string, args ...string) (string, error) {
	full := append([]string{"exec", "-i", c.names[i], "/gantry"}, args...)
	cmd := exec.CommandContext(ctx, "docker", full...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const jobYAML = "name: %s\ndriver: mock\ncount: 1\nresources:\n  cpu: 10\n  memory_mb: 8\n"

// TestPartitionedLeader cuts the leader off from the other two servers: the
// majority elects a new leader and accepts writes, the isolated server
// refuses them, and after healing all three hold one history.
func TestPartitionedLeader(t *testing.T) {
	if dockerSkip != "" {
		t.Skip("partition test skipped: " + dockerSkip)
	}
	start := time.Now()
	c := newDockerCluster(t, 3)
	t.Logf("%s: image built, containers started", time.Since(start).Round(time.Millisecond))
	all := []int{0, 1, 2}
	l := c.leaderAmong(all...)
	cl := c.client(all...)
	if _, err := cl.RegisterJob(context.Background(), &api.Job{Name: "before", Count: 1, Driver: "mock",
		Resources: api.Resources{CPU: 10, MemoryMB: 8}}); err != nil {
		t.Fatalf("write before the partition: %v", err)
	}

	// Clients record register/stop/read operations for porcupine through
	// the whole test, starting at different servers.
	seed := uint64(time.Now().UnixNano())
	h := lincheck.NewHistory()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var badMu sync.Mutex
	var bad []error
	for w := range 3 {
		order := append(slices.Clone(all[w:]), all[:w]...)
		wcl := c.client(order...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lincheck.Worker(ctx, w, wcl, h, seed, 3000, func(err error) {
				badMu.Lock()
				bad = append(bad, err)
				badMu.Unlock()
			})
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	if _, err := docker(context.Background(), "network", "disconnect", c.network, c.names[l]); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: disconnected leader %s", time.Since(start).Round(time.Millisecond), c.names[l])
	var majority []int
	for _, i := range all {
		if i != l {
			majority = append(majority, i)
		}
	}
	nl := c.leaderAmong(majority...)
	t.Logf("%s: majority elected %s", time.Since(start).Round(time.Millisecond), c.names[nl])
	if _, err := c.client(majority...).RegisterJob(context.Background(), &api.Job{Name: "majority", Count: 1,
		Driver: "mock", Resources: api.Resources{CPU: 10, MemoryMB: 8}}); err != nil {
		t.Fatalf("write to the majority: %v", err)
	}

	// The isolated server refuses writes (it steps down without a quorum)
	// and refuses consistent reads; a stale read still answers locally.
	wctx, wcancel := context.WithTimeout(context.Background(), 90*time.Second)
	out, err := c.execCLI(wctx, l, fmt.Sprintf(jobYAML, "isolated"), "job", "run", "--detach", "--address", "127.0.0.1:4646", "-")
	wcancel()
	if err == nil {
		t.Fatalf("isolated server accepted a write: %s", out)
	}
	t.Logf("%s: isolated write refused: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	out, err = c.execCLI(rctx, l, "", "job", "list", "--address", "127.0.0.1:4646")
	rcancel()
	if err == nil {
		t.Fatalf("isolated server answered a consistent read: %s", out)
	}

	// Let the clients work against the majority for a while before healing.
	ops := len(h.Operations())
	c.waitFor(60*time.Second, "client operations during the partition", func() (bool, string) {
		n := len(h.Operations())
		return n >= ops+40, fmt.Sprintf("%d operations", n-ops)
	})

	// Heal.
	if _, err := docker(context.Background(), "network", "connect", "--ip", c.ips[l], c.network, c.names[l]); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: reconnected %s", time.Since(start).Round(time.Millisecond), c.names[l])
	c.leaderAmong(all...)
	cancel()
	wg.Wait()
	for _, err := range bad {
		t.Errorf("client error that should not happen: %v", err)
	}

	// One history: every server converges to the same jobs, with the
	// majority's write and without the isolated one.
	c.waitFor(60*time.Second, "all servers to hold the same jobs", func() (bool, string) {
		var first []string
		for n, i := range all {
			jobs, _, err := c.client(i).ListJobs(context.Background(), &api.QueryOptions{Stale: true})
			if err != nil {
				return false, err.Error()
			}
			var ids []string
			for _, j := range jobs {
				ids = append(ids, fmt.Sprintf("%s/v%d/%d/%v", j.ID, j.Version, j.Count, j.Stop))
			}
			slices.Sort(ids)
			if !slices.Contains(ids, "majority/v1/1/false") || !slices.ContainsFunc(ids, func(s string) bool { return strings.HasPrefix(s, "before/") }) {
				return false, fmt.Sprintf("%s: %v", c.names[i], ids)
			}
			if slices.ContainsFunc(ids, func(s string) bool { return strings.HasPrefix(s, "isolated/") }) {
				t.Fatalf("%s holds the write refused while isolated: %v", c.names[i], ids)
			}
			if n == 0 {
				first = ids
			} else if !slices.Equal(first, ids) {
				return false, fmt.Sprintf("%v vs %v", first, ids)
			}
		}
		return true, ""
	})

	t.Logf("%s: servers converged", time.Since(start).Round(time.Millisecond))
	res, n, vis := lincheck.Check(h, 2*time.Minute, os.TempDir())
	t.Logf("linearizability: %d operations, result %s", n, res)
	if res != porcupine.Ok {
		t.Fatalf("history is not linearizable (%s); visualization in %s (seed %d)", res, vis, seed)
	}
}
