package docker

import (
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
)

// TestMeasureStart logs the start-to-running time of 20 containers (the
// driver's Start: create, start and inspect, the image being local), one
// after another and all at once. It asserts nothing about the figures; set
// GANTRY_DOCKER_MEASURE=1 to run it:
//
//	GANTRY_DOCKER_MEASURE=1 go test -run TestMeasureStart -v ./internal/driver/docker/
func TestMeasureStart(t *testing.T) {
	if os.Getenv("GANTRY_DOCKER_MEASURE") == "" {
		t.Skip("set GANTRY_DOCKER_MEASURE=1 to measure container start times")
	}
	const copies = 20
	d := newDriver(t)
	for _, mode := range []string{"sequential", "concurrent"} {
		ds := make([]time.Duration, copies)
		tasks := make([]driver.Task, copies)
		var wg sync.WaitGroup
		for i := range copies {
			run := func() {
				cfg := taskConfig(t, "exec sleep 1000", func(c *driver.TaskConfig) { c.Resources.CPU = 10 })
				start := time.Now()
				task, err := d.Start(cfg)
				ds[i] = time.Since(start)
				if err != nil {
					t.Error(err)
					return
				}
				tasks[i] = task
			}
			if mode == "sequential" {
				run()
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); run() }()
		}
		wg.Wait()
		slices.Sort(ds)
		t.Logf("%s, %d containers: start-to-running p50 %s p99 %s", mode, copies,
			ds[copies/2].Round(time.Millisecond), ds[(copies-1)*99/100].Round(time.Millisecond))
		for _, task := range tasks {
			if task != nil {
				_ = task.Stop(0)
			}
		}
	}
}
