package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// A job with two task groups runs end to end: web (3 copies of an exec
// task with a dynamic port and a sidecar) and cache (1 mock copy) reach
// running with their own names, resources and services; scaling one group
// leaves the other's copies alone; stopping the job stops both.
func TestTaskGroupsEndToEnd(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("g-1", 2000, 2048)
	c.startAgent("g-2", 2000, 2048)
	c.waitReadyNodes(2)

	spec := fmt.Sprintf(`name: shop
type: service
groups:
  - name: web
    count: 3
    driver: exec
    config:
      command: /bin/sh
      args: ["-c", "echo web-on-$GANTRY_PORT_HTTP; while true; do sleep 1; done"]
    env:
      E2E_DIR: %s
    resources: {cpu: 100, memory_mb: 32}
    network:
      ports:
        - label: http
    services:
      - name: shop-web
        port: http
    tasks:
      - name: helper
        driver: exec
        config:
          command: /bin/sh
          args: ["-c", "while true; do sleep 1; done"]
        env:
          E2E_DIR: %s
        resources: {cpu: 10, memory_mb: 8}
        lifecycle: {hook: prestart, sidecar: true}
  - name: cache
    count: 1
    driver: mock
    config: {run_for: 0s}
    resources: {cpu: 300, memory_mb: 64}
`, c.dir, c.dir)
	file := filepath.Join(c.dir, "shop.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.gantry("job", "run", file); err != nil || !strings.Contains(out, "running") {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	running := c.waitRunning("shop", 4)
	names := func(allocs []*api.Allocation) []string {
		var out []string
		for _, a := range allocs {
			out = append(out, a.Name)
		}
		slices.Sort(out)
		return out
	}
	if got, want := names(running), []string{"shop.cache[0]", "shop.web[0]", "shop.web[1]", "shop.web[2]"}; !slices.Equal(got, want) {
		t.Fatalf("running copies %v, want %v", got, want)
	}
	webIDs := map[string]bool{}
	for _, a := range running {
		switch a.Group {
		case "web":
			webIDs[a.ID] = true
			if a.Resources.CPU != 110 || len(a.Ports) != 1 {
				t.Fatalf("%s: resources %v ports %v, want the web group's (110 millicores with its sidecar, one port)", a.Name, a.Resources, a.Ports)
			}
		case "cache":
			if a.Resources.CPU != 300 || len(a.Ports) != 0 {
				t.Fatalf("%s: resources %v ports %v, want the cache group's", a.Name, a.Resources, a.Ports)
			}
		default:
			t.Fatalf("%s: group %q", a.Name, a.Group)
		}
	}

	// The web copies' main task sees its port; the sidecar runs beside it.
	web := running[slices.IndexFunc(running, func(a *api.Allocation) bool { return a.Group == "web" })]
	c.waitFor(30*time.Second, "the web task's output with its port", func() (bool, string) {
		out, err := c.gantry("alloc", "logs", web.ID)
		return err == nil && strings.Contains(out, fmt.Sprintf("web-on-%d", web.Ports[0].Value)), out
	})
	c.waitFor(30*time.Second, "the sidecar running", func() (bool, string) {
		a, _, err := c.client.Allocation(context.Background(), web.ID, nil)
		if err != nil {
			return false, err.Error()
		}
		return a.TaskStates["helper"].State == structs.TaskStateRunning, fmt.Sprint(a.TaskStates)
	})

	// The catalog lists the web group's service, one instance per copy.
	c.waitFor(30*time.Second, "3 instances of shop-web", func() (bool, string) {
		in, _, err := c.client.Service(context.Background(), "shop-web", nil, nil)
		return err == nil && len(in) == 3, fmt.Sprint(len(in), err)
	})

	out, err := c.gantry("job", "status", "shop")
	if err != nil {
		t.Fatalf("job status: %v\n%s", err, out)
	}
	for _, w := range []string{"Groups", "GROUP", "web", "cache", "shop.web[2]", "shop.cache[0]"} {
		if !strings.Contains(out, w) {
			t.Fatalf("job status does not show %q:\n%s", w, out)
		}
	}

	// A job with several groups needs the group to scale.
	if out, err := c.gantry("job", "scale", "shop", "2"); err == nil || !strings.Contains(out, "name the group") {
		t.Fatalf("job scale without a group: %v\n%s", err, out)
	}
	if out, err := c.gantry("job", "scale", "shop", "nope", "2"); err == nil || !strings.Contains(out, "no group") {
		t.Fatalf("job scale of an unknown group: %v\n%s", err, out)
	}
	if out, err := c.gantry("job", "scale", "shop", "cache", "2"); err != nil {
		t.Fatalf("job scale shop cache 2: %v\n%s", err, out)
	}
	running = c.waitRunning("shop", 5)
	if got, want := names(running), []string{"shop.cache[0]", "shop.cache[1]", "shop.web[0]", "shop.web[1]", "shop.web[2]"}; !slices.Equal(got, want) {
		t.Fatalf("after scaling cache: %v, want %v", got, want)
	}
	for _, a := range running {
		if a.Group == "web" && !webIDs[a.ID] {
			t.Fatalf("scaling cache replaced web copy %s", a.Name)
		}
	}

	if out, err := c.gantry("job", "stop", "shop"); err != nil {
		t.Fatalf("job stop: %v\n%s", err, out)
	}
	c.waitFor(60*time.Second, "no live copies of shop", func() (bool, string) {
		live := c.liveAllocs("shop")
		return len(live) == 0, strings.Join(names(live), " ")
	})
}
