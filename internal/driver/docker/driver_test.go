package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
)

// containersOf lists the containers (any state) labelled with the alloc.
func containersOf(t testing.TB, d *Driver, allocID string) []string {
	t.Helper()
	list, err := d.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", LabelAlloc+"="+allocID)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestRunPrintsAndExits(t *testing.T) {
	d := newDriver(t)
	cfg := taskConfig(t, `echo "hello $GANTRY_JOB $GREETING"; echo oops >&2; exit 3`,
		func(c *driver.TaskConfig) { c.Env = map[string]string{"GREETING": "from env"} })
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if task.Handle().PID <= 0 && len(containersOf(t, d, cfg.AllocID)) == 0 {
		t.Error("no container and no PID after start")
	}
	res := waitExit(t, task)
	if res.ExitCode != 3 || res.Err != nil || res.OOMKilled {
		t.Errorf("result %+v, want exit code 3", res)
	}
	if got := readLog(t, cfg.AllocDir, driver.StdoutFile); got != "hello job from env\n" {
		t.Errorf("stdout %q", got)
	}
	if got := readLog(t, cfg.AllocDir, driver.StderrFile); got != "oops\n" {
		t.Errorf("stderr %q", got)
	}
	if ids := containersOf(t, d, cfg.AllocID); len(ids) != 0 {
		t.Errorf("container not removed after its exit: %v", ids)
	}
	// A restart in place appends to the same logs.
	task, err = d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitExit(t, task)
	if got := readLog(t, cfg.AllocDir, driver.StdoutFile); got != "hello job from env\nhello job from env\n" {
		t.Errorf("stdout after a restart %q", got)
	}
}

func TestStopWithSignalAndGrace(t *testing.T) {
	tests := []struct {
		name   string
		script string
		config map[string]any
		grace  time.Duration
		code   int
		log    string
	}{
		// The task handles the signal and exits on its own.
		{"handles kill_signal", `trap 'echo got INT; exit 0' INT; echo ready; while true; do sleep 0.05; done`,
			map[string]any{"kill_signal": "SIGINT"}, time.Minute, 0, "ready\ngot INT\n"},
		// PID 1 without a handler ignores SIGTERM: SIGKILL after the grace.
		{"ignores it", `echo ready; exec sleep 1000`, nil, 200 * time.Millisecond, 137, "ready\n"},
		// The job's kill_timeout replaces the agent's grace.
		{"kill_timeout wins", `echo ready; exec sleep 1000`, map[string]any{"kill_timeout": "100ms"}, time.Hour, 137, "ready\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			cfg := taskConfig(t, tc.script)
			for k, v := range tc.config {
				cfg.Config[k] = v
			}
			task, err := d.Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "ready", func() bool { return readLog(t, cfg.AllocDir, driver.StdoutFile) == "ready\n" })
			if err := task.Stop(tc.grace); err != nil {
				t.Fatal(err)
			}
			res := waitExit(t, task)
			if res.ExitCode != tc.code {
				t.Errorf("exit code %d, want %d", res.ExitCode, tc.code)
			}
			if got := readLog(t, cfg.AllocDir, driver.StdoutFile); got != tc.log {
				t.Errorf("stdout %q, want %q", got, tc.log)
			}
		})
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	d := newDriver(t)
	// dd allocates its 256 MiB block at once: far over the 32 MiB limit.
	cfg := taskConfig(t, `echo start; dd if=/dev/zero of=/dev/null bs=256M count=1; echo survived`,
		func(c *driver.TaskConfig) { c.Resources.MemoryMB = 32 })
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, task)
	if !res.OOMKilled {
		t.Fatalf("result %+v (stdout %q): want an OOM kill", res, readLog(t, cfg.AllocDir, driver.StdoutFile))
	}
	if !strings.Contains(res.String(), "out of memory") {
		t.Errorf("result says %q", res)
	}
}

// TestRecoverAfterDetach is an agent restart: the first driver detaches,
// the container runs on and writes while nobody watches, a new driver
// re-attaches from the handle. No second container exists, and every line
// is in the log exactly once.
func TestRecoverAfterDetach(t *testing.T) {
	d1 := newDriver(t)
	gate := "/gate/open"
	cfg := taskConfig(t, fmt.Sprintf(`i=0; while [ ! -f %s ]; do i=$((i+1)); echo line $i; sleep 0.01; done; echo done; exit 7`, gate),
		func(c *driver.TaskConfig) { c.Config["volumes"] = []any{"./gate:/gate"} })
	task, err := d1.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "output", func() bool { return strings.Contains(readLog(t, cfg.AllocDir, driver.StdoutFile), "line 5\n") })
	h := task.Handle()
	task.Detach()
	time.Sleep(200 * time.Millisecond) // output nobody copies yet

	d2, err := New(d1.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	task2, err := d2.Recover(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ids := containersOf(t, d2, cfg.AllocID); len(ids) != 1 {
		t.Fatalf("containers of the alloc after re-attach: %v", ids)
	}
	select {
	case <-task2.Exited():
		t.Fatalf("re-attached task exited at once: %+v", task2.Result())
	default:
	}
	if err := os.WriteFile(filepath.Join(cfg.AllocDir, "gate", "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, task2)
	if res.ExitCode != 7 {
		t.Errorf("exit %+v, want 7", res)
	}
	out := readLog(t, cfg.AllocDir, driver.StdoutFile)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[len(lines)-1] != "done" {
		t.Errorf("log does not end with done: %q", lines[len(lines)-1])
	}
	for i, l := range lines[:len(lines)-1] {
		if want := fmt.Sprintf("line %d", i+1); l != want {
			t.Fatalf("log line %d = %q, want %q: output lost or copied twice across the re-attach", i+1, l, want)
		}
	}
}

// TestRecoverFinishedWhileDetached: the container ended while no agent
// watched; re-attaching reports its real exit, and a container removed
// after its exit was recorded reports the recorded exit.
func TestRecoverFinishedWhileDetached(t *testing.T) {
	d := newDriver(t)
	cfg := taskConfig(t, `echo hi; sleep 0.3; exit 5`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := task.Handle()
	task.Detach()
	eventually(t, "container exit", func() bool {
		insp, err := d.cli.ContainerInspect(context.Background(), ContainerName(cfg.AllocID), client.ContainerInspectOptions{})
		return err == nil && !insp.Container.State.Running
	})
	res := waitExit(t, mustRecover(t, d, h, cfg))
	if res.ExitCode != 5 || readLog(t, cfg.AllocDir, driver.StdoutFile) != "hi\n" {
		t.Errorf("result %+v log %q", res, readLog(t, cfg.AllocDir, driver.StdoutFile))
	}
	// Recovering the same handle again: the container is gone, the
	// record says how it ended.
	res = waitExit(t, mustRecover(t, d, h, cfg))
	if res.ExitCode != 5 || res.Err != nil {
		t.Errorf("from the record: %+v", res)
	}
	// Without the record the task is lost, never restarted.
	if err := os.Remove(filepath.Join(cfg.AllocDir, exitFile)); err != nil {
		t.Fatal(err)
	}
	res = waitExit(t, mustRecover(t, d, h, cfg))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "left no exit code") {
		t.Errorf("without a record: %+v", res)
	}
	if ids := containersOf(t, d, cfg.AllocID); len(ids) != 0 {
		t.Errorf("recover created containers: %v", ids)
	}
}

func mustRecover(t *testing.T, d *Driver, h *driver.Handle, cfg *driver.TaskConfig) driver.Task {
	t.Helper()
	task, err := d.Recover(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// TestKilledBehindTheDriversBack: a container killed with docker kill is
// an exit like any other (the agent applies the restart policy to it).
func TestKilledBehindTheDriversBack(t *testing.T) {
	d := newDriver(t)
	cfg := taskConfig(t, `echo up; exec sleep 1000`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "up", func() bool { return readLog(t, cfg.AllocDir, driver.StdoutFile) == "up\n" })
	if _, err := d.cli.ContainerKill(context.Background(), ContainerName(cfg.AllocID), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, task)
	if res.ExitCode != 137 || res.Err != nil {
		t.Errorf("result %+v, want exit code 137", res)
	}
}

func TestCleanupOrphans(t *testing.T) {
	d := newDriver(t)
	other := newDriver(t) // another agent on the same daemon
	start := func(d *Driver) *driver.TaskConfig {
		cfg := taskConfig(t, `exec sleep 1000`)
		if _, err := d.Start(cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	kept, orphan, foreign := start(d), start(d), start(other)
	n, err := d.Cleanup(context.Background(), func(alloc string) bool { return alloc == kept.AllocID })
	if err != nil || n != 1 {
		t.Fatalf("cleanup removed %d (%v), want 1", n, err)
	}
	for _, c := range []struct {
		cfg  *driver.TaskConfig
		want int
	}{{kept, 1}, {orphan, 0}, {foreign, 1}} {
		if got := len(containersOf(t, d, c.cfg.AllocID)); got != c.want {
			t.Errorf("alloc %s: %d containers, want %d", c.cfg.AllocID, got, c.want)
		}
	}
}

func TestStartErrors(t *testing.T) {
	d := newDriver(t)
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"unknown image", map[string]any{"image": "gantry-no-such-image-" + randomID() + ":1"},
			[]string{"gantry-no-such-image-", "is not on this node and"}},
		{"unknown command", map[string]any{"image": testImage, "command": "/no/such/program"},
			[]string{"/no/such/program"}},
		{"invalid config", map[string]any{"image": testImage, "ports": "80"},
			[]string{"invalid docker config: ports: must be a map"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := taskConfig(t, "")
			cfg.Config = tc.config
			_, err := d.Start(cfg)
			t.Logf("start error: %v", err)
			if err == nil || !errors.Is(err, driver.ErrStartFailed) {
				t.Fatalf("err %v, want a start failure", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if ids := containersOf(t, d, cfg.AllocID); len(ids) != 0 {
				t.Errorf("a failed start left containers %v", ids)
			}
		})
	}
}

// TestPortsAndVolumes: a static port mapping reaches busybox httpd in the
// container, serving a file from a named volume that a first task wrote.
func TestPortsAndVolumes(t *testing.T) {
	d := newDriver(t)
	vol := "gantry-test-" + randomID()
	t.Cleanup(func() { _, _ = d.cli.VolumeRemove(context.Background(), vol, client.VolumeRemoveOptions{Force: true}) })
	writer := taskConfig(t, `echo stored > /data/index.html`, func(c *driver.TaskConfig) {
		c.Config["volumes"] = []any{vol + ":/data"}
	})
	task, err := d.Start(writer)
	if err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, task); res.ExitCode != 0 {
		t.Fatalf("writer %+v: %s", res, readLog(t, writer.AllocDir, driver.StderrFile))
	}
	port := freePort(t)
	server := taskConfig(t, `exec httpd -f -p 80 -h /data`, func(c *driver.TaskConfig) {
		c.Config["volumes"] = []any{vol + ":/data:ro"}
		c.Config["ports"] = map[string]any{fmt.Sprintf("127.0.0.1:%d", port): "80"}
	})
	task, err = d.Start(server)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = task.Stop(0) }()
	var body string
	eventually(t, "httpd answers", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if body != "stored\n" {
		t.Errorf("served %q", body)
	}
	ports := task.(interface{ Ports() []driver.PortMapping }).Ports()
	if len(ports) != 1 || ports[0].HostPort != port || ports[0].ContainerPort != 80 || ports[0].HostIP != "127.0.0.1" {
		t.Errorf("bound ports %+v", ports)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestFingerprint(t *testing.T) {
	d := newDriver(t)
	attrs := d.Fingerprint(context.Background())
	if attrs["driver.docker"] != "true" || attrs["driver.docker.version"] == "" {
		t.Errorf("attrs %v", attrs)
	}
	none, err := New(Options{NodeID: "n", Endpoint: "unix://" + filepath.Join(t.TempDir(), "no.sock"), CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if attrs := none.Fingerprint(context.Background()); attrs != nil {
		t.Errorf("no daemon: attrs %v", attrs)
	}
}
