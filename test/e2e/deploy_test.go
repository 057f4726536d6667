package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// rollingSpec is a 6-copy mock service rolled 2 at a time; failing makes
// its copies fail to start with no restart left.
func rollingSpec(release string, failing bool) string {
	cfg := "{}"
	if failing {
		cfg = "{fail_start: true}"
	}
	return fmt.Sprintf(`name: web
count: 6
resources: {cpu: 100, memory_mb: 16}
driver: mock
config: %s
env: {RELEASE: "%s"}
restart: {attempts: 0, delay: 1s}
update:
  max_parallel: 2
  min_healthy_time: 500ms
  healthy_deadline: 30s
  progress_deadline: 1m
  auto_revert: true
`, cfg, release)
}

// TestRollingUpdateEndToEnd: real server and agents, the mock driver and
// the CLI. `gantry job run` follows a rolling update of 6 copies with
// max_parallel 2 while a sampler reads the copies through the API: never
// fewer than 4 healthy, version 2 everywhere at the end. A failing version
// 3 with auto_revert ends on version 2's spec.
func TestRollingUpdateEndToEnd(t *testing.T) {
	c := newCluster(t)
	c.ttl = "10s"
	c.startServer()
	for i := range 3 {
		c.startAgent(fmt.Sprintf("node-%d", i+1), 2000, 1024)
	}
	c.waitReadyNodes(3)
	run := func(release string, failing bool) (string, error) {
		file := filepath.Join(c.dir, "web-"+release+".yaml")
		if err := os.WriteFile(file, []byte(rollingSpec(release, failing)), 0o644); err != nil {
			t.Fatal(err)
		}
		return c.gantry("job", "run", "--timeout", "2m", file)
	}
	if out, err := run("1", false); err != nil || !strings.Contains(out, "deployment done") {
		t.Fatalf("job run v1: %v\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	fewest, samples := 1<<30, 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			allocs, _, err := c.client.JobAllocations(ctx, "web", nil)
			if err == nil {
				n := 0
				for _, a := range allocs {
					if a.DesiredStatus == "run" && a.ClientStatus == "running" &&
						time.Since(time.Unix(0, a.TaskState.StartedAt)) >= 500*time.Millisecond {
						n++
					}
				}
				fewest, samples = min(fewest, n), samples+1
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	out, err := run("2", false)
	cancel()
	wg.Wait()
	if err != nil || !strings.Contains(out, "deployment done") || !strings.Contains(out, "6/6 healthy") {
		t.Fatalf("job run v2: %v\n%s", err, out)
	}
	t.Logf("rolling update: fewest healthy copies %d over %d samples\n%s", fewest, samples, out)
	if fewest < 4 {
		t.Fatalf("fewest healthy copies during the rolling update: %d, want >= 4", fewest)
	}
	versions := func() map[uint64]int {
		allocs, _, err := c.client.JobAllocations(context.Background(), "web", nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint64]int{}
		for _, a := range allocs {
			if !a.Terminal() {
				out[a.JobVersion]++
			}
		}
		return out
	}
	if got := versions(); got[2] != 6 || len(got) != 1 {
		t.Fatalf("after v2: live copies by version %v", got)
	}

	out, err = run("3", true)
	if err == nil || !strings.Contains(out, "failed") || !strings.Contains(out, "rollback to version 2") {
		t.Fatalf("job run of a failing v3: %v\n%s", err, out)
	}
	c.waitFor(2*time.Minute, "the rollback to version 2's spec", func() (bool, string) {
		j, _, err := c.client.Job(context.Background(), "web", nil)
		if err != nil {
			return false, err.Error()
		}
		d, _, err := c.client.JobDeployment(context.Background(), "web", nil)
		if err != nil {
			return false, err.Error()
		}
		got := versions()
		return j.Version == 4 && j.Env["RELEASE"] == "2" && d.JobVersion == 4 && d.Status == api.DeploymentSuccessful && got[4] == 6 && len(got) == 1,
			fmt.Sprintf("job v%d %v, deployment v%d %s, live %v", j.Version, j.Env, d.JobVersion, d.Status, got)
	})
	out, err = c.gantry("deployment", "list")
	if err != nil || !strings.Contains(out, "successful") || !strings.Contains(out, "failed") {
		t.Fatalf("deployment list: %v\n%s", err, out)
	}
}
