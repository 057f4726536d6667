package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkRollingUpdate100 is the time to roll 100 mock copies with
// max_parallel 10 through one real server (Raft, the scheduler, the
// deployment watcher): each iteration registers a new version and waits
// until its deployment is successful. The copies are played by
// fakeAgents, which poll every 15 ms; min_healthy_time is 1 ms, so the
// figure is the control plane's cost of ten waves (the agents' polling
// included), not a task's start time. Run with
//
//	go test -run '^$' -bench RollingUpdate100 -benchtime 3x ./internal/server
func BenchmarkRollingUpdate100(b *testing.B) {
	for _, arch := range []string{"monolithic", "shared-state"} {
		b.Run(arch, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Scheduler.Architecture = arch
			cfg.HeartbeatTTL = time.Hour
			_, c := startServer(b, cfg)
			for i := range 10 {
				if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%d", i), 100000, 100000)); err != nil {
					b.Fatal(err)
				}
			}
			startFakeAgents(b, c, "web")
			u := &api.UpdateStrategy{MaxParallel: 10, MinHealthyTime: structs.Duration(time.Millisecond),
				HealthyDeadline: structs.Duration(time.Minute), ProgressDeadline: structs.Duration(2 * time.Minute)}
			job := func(v int) *api.Job {
				j := rollingJob(fmt.Sprint(v), 100, u)
				j.Resources = api.Resources{CPU: 10, MemoryMB: 10}
				return j
			}
			if _, err := c.RegisterJob(bg, job(0)); err != nil {
				b.Fatal(err)
			}
			benchWaitDeployment(b, c, 1)
			v := 1
			for b.Loop() {
				resp, err := c.RegisterJob(bg, job(v))
				if err != nil {
					b.Fatal(err)
				}
				benchWaitDeployment(b, c, resp.Version)
				v++
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/roll")
		})
	}
}

func benchWaitDeployment(b *testing.B, c *api.Client, version uint64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		d, _, err := c.JobDeployment(bg, "web", nil)
		if err == nil && d.JobVersion == version {
			switch d.Status {
			case api.DeploymentSuccessful:
				return
			case api.DeploymentFailed, api.DeploymentCancelled:
				b.Fatalf("deployment of version %d %s: %s", version, d.Status, d.StatusDescription)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("deployment of version %d not done in 5 minutes", version)
}
