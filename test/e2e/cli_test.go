package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CLI drives a real cluster: run a job and follow it, inspect it, read
// its logs, scale and stop it; an invalid file is refused with the field.
func TestCLIEndToEnd(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("dev-1", 1000, 1024, "zone=a")
	c.startAgent("dev-2", 1000, 1024, "zone=b")
	c.waitReadyNodes(2)

	spec := fmt.Sprintf(`name: hello
type: service
count: 2
resources:
  cpu: 100
  memory_mb: 32
driver: exec
config:
  command: /bin/sh
  args: ["-c", "echo hello-from-gantry; while true; do sleep 1; done"]
env:
  E2E_DIR: %s
`, c.dir)
	file := filepath.Join(c.dir, "hello.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := c.gantry("job", "run", file)
	if err != nil {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "running") {
		t.Fatalf("job run output does not report running copies:\n%s", out)
	}

	out, err = c.gantry("job", "status", "hello")
	if err != nil || !strings.Contains(out, "hello") || !strings.Contains(out, "running") {
		t.Fatalf("job status: %v\n%s", err, out)
	}
	out, err = c.gantry("job", "list")
	if err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("job list: %v\n%s", err, out)
	}
	out, err = c.gantry("node", "list")
	if err != nil || !strings.Contains(out, "dev-1") || !strings.Contains(out, "dev-2") {
		t.Fatalf("node list: %v\n%s", err, out)
	}
	out, err = c.gantry("-o", "json", "node", "status", "dev-1")
	if err != nil || !strings.Contains(out, `"name"`) {
		t.Fatalf("node status -o json: %v\n%s", err, out)
	}

	alloc := c.waitRunning("hello", 2)[0]
	out, err = c.gantry("alloc", "status", alloc.ID[:8])
	if err != nil || !strings.Contains(out, alloc.ID[:8]) {
		t.Fatalf("alloc status: %v\n%s", err, out)
	}
	c.waitFor(30*time.Second, "the task's output in alloc logs", func() (bool, string) {
		out, err := c.gantry("alloc", "logs", alloc.ID)
		return err == nil && strings.Contains(out, "hello-from-gantry"), out
	})

	if out, err = c.gantry("job", "scale", "hello", "3"); err != nil {
		t.Fatalf("job scale: %v\n%s", err, out)
	}
	c.waitRunning("hello", 3)

	if out, err = c.gantry("job", "stop", "hello"); err != nil {
		t.Fatalf("job stop: %v\n%s", err, out)
	}
	c.waitFor(30*time.Second, "hello to stop", func() (bool, string) {
		live := c.liveAllocs("hello")
		return len(live) == 0, fmt.Sprintf("%d live", len(live))
	})

	bad := filepath.Join(c.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\ncount: -3\ndriver: exec\nresources: {cpu: 100, memory_mb: 10}\nconfig: {command: /bin/true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = c.gantry("job", "run", "--detach", bad)
	if err == nil || !strings.Contains(out, "count") {
		t.Fatalf("invalid job: want an error naming count, got err=%v\n%s", err, out)
	}
	out, _ = c.gantry("job", "list")
	if strings.Contains(out, "bad") {
		t.Fatalf("invalid job was stored:\n%s", out)
	}
}
