package ha

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/test/lincheck"
)

// submitter registers uniquely named jobs in a loop and remembers which
// were acknowledged.
type submitter struct {
	mu     sync.Mutex
	acked  []string
	failed int
}

func (s *submitter) run(ctx context.Context, c *api.Client, maxJobs int) {
	for i := 0; i < maxJobs && ctx.Err() == nil; i++ {
		name := fmt.Sprintf("sub-%04d", i)
		opCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := c.RegisterJob(opCtx, mockJob(name, 1))
		cancel()
		s.mu.Lock()
		if err == nil {
			s.acked = append(s.acked, name)
		} else {
			s.failed++
		}
		s.mu.Unlock()
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *submitter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func (s *submitter) ackedJobs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acked)
}

// TestLeaderKillKeepsAcknowledgedJobs is the acceptance scenario:
// three servers and three agents; while a client submits jobs in a loop
// and other clients register, stop and read jobs (recorded for porcupine),
// the leader is killed with SIGKILL, several times. Each time a new leader
// is elected and places new jobs; the killed server restarts with its data
// and catches up. Afterwards every acknowledged job exists and runs, no
// node was marked down, and the history is linearizable.
func TestLeaderKillKeepsAcknowledgedJobs(t *testing.T) {
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("GANTRY_HA_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("workload seed %d, %d leader kills", seed, rounds)

	c := newHACluster(t, 3)
	c.leader()
	c.startAgents(3)
	c.waitReadyNodes(3)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	sub := &submitter{}
	wg.Add(1)
	go func() { defer wg.Done(); sub.run(ctx, c.client, 2000) }()
	h := lincheck.NewHistory()
	var badMu sync.Mutex
	var bad []error
	for w := range 3 {
		// Each worker starts at a different server, so reads and writes
		// reach followers (forwarded) as well as the leader.
		addrs := c.allAddrs()
		addrs = append(addrs[w:], addrs[:w]...)
		cl := c.clientFor(addrs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lincheck.Worker(ctx, w, cl, h, seed, 5000, func(err error) {
				badMu.Lock()
				bad = append(bad, err)
				badMu.Unlock()
			})
		}()
	}

	var failovers []time.Duration
	for round := range rounds {
		before := sub.count()
		c.waitFor(60*time.Second, "jobs acknowledged before the kill", func() (bool, string) {
			return sub.count() >= before+10, fmt.Sprintf("%d acked", sub.count())
		})
		l := c.leader()
		killed := time.Now()
		c.servers[l].Kill9()
		c.servers[l] = nil
		t.Logf("round %d: killed leader server-%d", round+1, l+1)

		nl := c.leader()
		if nl == l {
			t.Fatalf("killed server still leads")
		}
		// Scheduling continues: the first placement after the kill.
		var first time.Duration
		c.waitFor(60*time.Second, "a placement after the kill", func() (bool, string) {
			allocs, _, err := c.client.ListAllocations(context.Background(), nil)
			if err != nil {
				return false, err.Error()
			}
			first = 0
			for _, a := range allocs {
				if d := time.Duration(a.CreateTime - killed.UnixNano()); d > 0 && (first == 0 || d < first) {
					first = d
				}
			}
			return first > 0, fmt.Sprintf("%d allocations, none newer than the kill", len(allocs))
		})
		failovers = append(failovers, first)
		t.Logf("round %d: new leader server-%d; first placement %s after the kill", round+1, nl+1, first.Round(time.Millisecond))

		// The killed server restarts with its data and catches up.
		c.startServer(l)
		want := sub.ackedJobs()
		c.waitFor(60*time.Second, fmt.Sprintf("restarted server-%d to catch up", l+1), func() (bool, string) {
			jobs, _, err := c.clientFor(c.httpAddr(l)).ListJobs(context.Background(), &api.QueryOptions{Stale: true})
			if err != nil {
				return false, err.Error()
			}
			have := map[string]bool{}
			for _, j := range jobs {
				have[j.ID] = true
			}
			for _, w := range want {
				if !have[w] {
					return false, "missing " + w
				}
			}
			return true, ""
		})
	}
	c.waitFor(60*time.Second, "jobs acknowledged after the last kill", func() (bool, string) {
		return sub.count() >= 10*rounds+10, fmt.Sprintf("%d acked", sub.count())
	})
	cancel()
	wg.Wait()
	for _, err := range bad {
		t.Errorf("client error that should not happen: %v", err)
	}

	// Every acknowledged job exists and is scheduled and running.
	acked := sub.ackedJobs()
	t.Logf("%d jobs acknowledged, %d submissions failed (unavailable during elections)", len(acked), sub.failed)
	c.waitFor(90*time.Second, "every acknowledged job running", func() (bool, string) {
		jobs, _, err := c.client.ListJobs(context.Background(), nil)
		if err != nil {
			return false, err.Error()
		}
		byID := map[string]*api.JobListStub{}
		for _, j := range jobs {
			byID[j.ID] = j
		}
		for _, name := range acked {
			j := byID[name]
			if j == nil {
				t.Fatalf("acknowledged job %s is missing", name)
			}
			if j.Summary[api.AllocClientRunning] != 1 {
				return false, fmt.Sprintf("%s: %v", name, j.Summary)
			}
		}
		return true, ""
	})

	// No node was marked down and no allocation lost by the leader changes.
	nodes, _, err := c.client.ListNodes(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Status != api.NodeStatusReady {
			t.Errorf("node %s is %s after leader changes", n.Name, n.Status)
		}
	}
	allocs, _, err := c.client.ListAllocations(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientLost {
			t.Errorf("allocation %s on %s lost", a.ID, a.NodeName)
		}
	}
	for i := range c.servers {
		if v, err := c.metric(i, "gantry_heartbeat_misses_total"); err != nil || v != 0 {
			t.Errorf("server-%d: heartbeat misses %v (%v)", i+1, v, err)
		}
	}

	// The registry's history is linearizable.
	res, n, vis := lincheck.Check(h, 2*time.Minute, os.TempDir())
	t.Logf("linearizability: %d operations, result %s", n, res)
	if res != porcupine.Ok {
		t.Fatalf("history is not linearizable (%s); visualization in %s (seed %d)", res, vis, seed)
	}

	sorted := slices.Clone(failovers)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var parts []string
	for _, d := range failovers {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	t.Logf("FAILOVER leader kill -> first new placement: %s; median %s",
		strings.Join(parts, " "), sorted[len(sorted)/2].Round(time.Millisecond))
}
