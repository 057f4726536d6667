package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// TestDockerTwoTierServices runs examples/two-tier/backend.yaml and
// examples/two-tier/web.yaml with a busybox image built for the test: three
// web copies on dynamic ports with an HTTP check, and a backend they find
// through the agent's DNS. The test reaches every web copy at the address
// the catalog gives and sees the backend's value in its answer.
//
// GANTRY_HEALTH_COPIES=50 runs that many web copies and logs what the note
// measures: the copies' container-start-to-healthy p50/p99 and the agent's
// RSS with them running.
func TestDockerTwoTierServices(t *testing.T) {
	d := newDockerEnv(t)
	copies := 3
	if n, err := strconv.Atoi(os.Getenv("GANTRY_HEALTH_COPIES")); err == nil && n > 0 {
		copies = n
	}
	c := newCluster(t)
	c.startServer()
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	agent := c.startAgentArgs("docker-1", "--cpu", "8000", "--memory", "8192", "--dns-addr", dnsAddr)
	c.waitReadyNodes(1)

	c.runExample(d.image, "two-tier/backend.yaml", 0)
	c.waitFor(90*time.Second, "the backend healthy", func() (bool, string) {
		ins, why := healthyInstances(c.client, "backend")
		return len(ins) == 1, why
	})
	c.runExample(d.image, "two-tier/web.yaml", copies)
	var web []api.ServiceInstance
	firstHealthy := map[string]time.Time{} // alloc ID -> first seen healthy in the catalog
	c.waitFor(300*time.Second, fmt.Sprintf("%d healthy web copies", copies), func() (bool, string) {
		var why string
		web, why = healthyInstances(c.client, "web")
		now := time.Now()
		for _, in := range web {
			if _, ok := firstHealthy[in.AllocID]; !ok {
				firstHealthy[in.AllocID] = now
			}
		}
		return len(web) == copies, why
	})
	ports := map[int]bool{}
	for _, in := range web {
		if ports[in.Port] {
			t.Fatalf("two web copies on port %d", in.Port)
		}
		ports[in.Port] = true
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, in := range web[:min(len(web), 3)] {
		url := fmt.Sprintf("http://%s:%d/cgi-bin/value", in.Address, in.Port)
		c.waitFor(30*time.Second, "the backend's value through "+in.AllocName, func() (bool, string) {
			resp, err := hc.Get(url)
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return strings.Contains(string(b), "web sees: backend-value-42"), resp.Status + " " + string(b)
		})
	}
	if os.Getenv("GANTRY_HEALTH_COPIES") != "" {
		logStartToHealthy(t, c.liveAllocs("web"), firstHealthy)
		logRSS(t, agent, fmt.Sprintf("docker agent with %d containers running (and checked every 1s)", copies+1))
	}
	for _, job := range []string{"web", "backend"} {
		if out, err := c.gantry("job", "stop", job); err != nil {
			t.Fatalf("job stop %s: %v\n%s", job, err, out)
		}
	}
	c.waitFor(120*time.Second, "no web instances left", func() (bool, string) {
		ins, _, err := c.client.Service(context.Background(), "web", &api.ServiceQuery{All: true}, nil)
		return err == nil && len(ins) == 0, fmt.Sprint(len(ins), err)
	})
	// The catalog drops a copy once it is stopped; its container goes a
	// little later. Wait for that, or the agent's end would leave it.
	waitNoContainers(c, d, 180*time.Second)
}

// logStartToHealthy logs the p50 and p99 of the copies' time from their
// container's first start (the first Started event) to the first time the
// catalog listed them healthy (polled every 200ms, so up to that much
// late), and how many restarts they had meanwhile.
func logStartToHealthy(t *testing.T, allocs []*api.Allocation, firstHealthy map[string]time.Time) {
	var ds []time.Duration
	restarts := 0
	for _, a := range allocs {
		restarts += a.TaskState.Restarts
		seen, ok := firstHealthy[a.ID]
		if !ok {
			continue
		}
		for _, e := range a.TaskState.Events {
			if e.Type == "Started" {
				ds = append(ds, seen.Sub(time.Unix(0, e.Time)))
				break
			}
		}
	}
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	pct := func(p int) time.Duration { return ds[(len(ds)-1)*p/100] }
	t.Logf("%d copies container-start-to-healthy (HTTP check every 1s, catalog polled every 200ms): p50 %s p99 %s max %s; %d restarts (load %s)",
		len(ds), pct(50), pct(99), ds[len(ds)-1], restarts, loadAvg())
}
