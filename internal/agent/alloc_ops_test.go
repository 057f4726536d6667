package agent

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestAllocOpsWithRealServer: through an in-process server, a running
// exec task gets its dynamic port; `alloc exec` runs commands in its
// directory and environment (stdin, stdout, stderr, exit code, a
// terminal); `alloc signal` reaches the task; `alloc restart` restarts it
// without counting a restart; `alloc stop` stops the copy and the
// scheduler places a replacement.
func TestAllocOpsWithRealServer(t *testing.T) {
	srv := startRealServer(t)
	acfg := DefaultConfig()
	acfg.Servers, acfg.DataDir, acfg.Name = []string{srv.HTTPAddr()}, t.TempDir(), "n1"
	acfg.CPU, acfg.MemoryMB, acfg.Drivers = 2000, 1024, testDrivers(t)
	acfg.KillTimeout = 2 * time.Second
	a, err := New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(); killLeftovers(a) })

	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + srv.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventually(t, "node ready", func() bool {
		n, _, err := c.Node(ctx, a.NodeID(), nil)
		return err == nil && n.Status == structs.NodeStatusReady
	})
	// The task records its starts and the SIGHUPs it gets in its directory.
	script := `echo start >> starts; trap 'echo hup >> hups' HUP; while true; do sleep 0.05; done`
	job := &structs.Job{Name: "ops", Type: structs.JobTypeService, Count: 1, Driver: "exec",
		Config:    map[string]any{"command": "/bin/sh", "args": []any{"-c", script}},
		Resources: structs.Resources{CPU: 100, MemoryMB: 32},
		Network:   &structs.Network{Ports: []structs.Port{{Label: "http"}}}}
	if _, err := c.RegisterJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	var alloc *structs.Allocation
	eventually(t, "allocation running", func() bool {
		allocs, _, err := c.JobAllocations(ctx, "ops", nil)
		if err != nil || len(allocs) != 1 {
			return false
		}
		alloc = allocs[0]
		return alloc.ClientStatus == structs.AllocClientRunning
	})
	if len(alloc.Ports) != 1 || alloc.Ports[0].Value < structs.DefaultMinDynamicPort || alloc.Ports[0].Value > structs.DefaultMaxDynamicPort {
		t.Fatalf("ports = %+v", alloc.Ports)
	}
	dir := filepath.Join(acfg.DataDir, allocsDir, alloc.ID)

	exec := func(o api.ExecOptions) (int, string, string, error) {
		var out, errb bytes.Buffer
		o.Stdout, o.Stderr = &out, &errb
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		code, err := c.AllocExec(cctx, alloc.ID[:8], o)
		return code, out.String(), errb.String(), err
	}
	code, out, errOut, err := exec(api.ExecOptions{
		Cmd:   []string{"/bin/sh", "-c", `read x; echo "got $x on $GANTRY_PORT_HTTP in $(pwd)"; echo oops >&2; exit 3`},
		Stdin: strings.NewReader("hello\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "got hello on " + itoa(alloc.Ports[0].Value) + " in " + dir + "\n"
	if code != 3 || out != want || errOut != "oops\n" {
		t.Fatalf("exec = %d %q %q, want 3 %q \"oops\\n\"", code, out, errOut, want)
	}
	code, out, _, err = exec(api.ExecOptions{Cmd: []string{"/bin/sh", "-c", "test -t 0 && echo tty"}, TTY: true, Width: 80, Height: 24})
	if err != nil || code != 0 || !strings.Contains(out, "tty") {
		t.Fatalf("exec on a terminal = %d %q %v", code, out, err)
	}
	if _, _, _, err := exec(api.ExecOptions{Cmd: []string{"/no/such/program"}}); err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("exec of a missing program: %v", err)
	}
	if _, _, _, err := exec(api.ExecOptions{Task: "other", Cmd: []string{"true"}}); err == nil || !strings.Contains(err.Error(), `no task "other"`) {
		t.Fatalf("exec in an unknown task: %v", err)
	}

	if err := c.AllocSignal(ctx, alloc.ID, "SIGHUP", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the task trapped SIGHUP", func() bool { return fileLines(dir, "hups") == 1 })
	if err := c.AllocSignal(ctx, alloc.ID, "SIGNOPE", ""); err == nil || !strings.Contains(err.Error(), "unknown signal") {
		t.Fatalf("a bad signal: %v", err)
	}

	if err := c.AllocRestart(ctx, alloc.ID, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restarted in place", func() bool {
		got, _, err := c.Allocation(ctx, alloc.ID, nil)
		return err == nil && fileLines(dir, "starts") == 2 && got.ClientStatus == structs.AllocClientRunning &&
			hasEvent(got, EventRestartSignaled) && got.TaskState.Restarts == 0
	})

	if _, err := c.AllocStop(ctx, alloc.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stopped and replaced", func() bool {
		allocs, _, err := c.JobAllocations(ctx, "ops", nil)
		if err != nil {
			return false
		}
		replaced := false
		for _, al := range allocs {
			if al.PreviousAllocation == alloc.ID && al.ClientStatus == structs.AllocClientRunning {
				replaced = true
			}
		}
		got, _, err := c.Allocation(ctx, alloc.ID, nil)
		return replaced && err == nil && got.ClientStatus == structs.AllocClientComplete
	})
	if _, _, _, err := exec(api.ExecOptions{Cmd: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("exec in a stopped allocation: %v", err)
	}
}

func fileLines(dir, name string) int {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.Count(string(b), "\n")
}

func itoa(n int) string { return strconv.Itoa(n) }
