package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

// devJob is a service of two sleepers: real task processes to look for.
const devJob = `name: sleepers
type: service
count: 2
resources: {cpu: 10, memory_mb: 8}
driver: exec
config:
  command: /bin/sh
  args: ["-c", "echo up; exec sleep 300"]
`

// liveUnder lists the live (not zombie) processes other than this one whose
// environment names dir: the task shims (GANTRY_SHIM_SPEC) and the tasks
// (GANTRY_ALLOC_DIR) of a cluster whose data lives in dir.
func liveUnder(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") Z") {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if strings.Contains(string(environ), dir) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return out
}

// devCluster starts `gantry dev` with its data in a temporary directory and
// waits until the two sleepers run. Its stdout is a pipe the caller owns.
type devCluster struct {
	dir    string
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr *testutil.SyncBuffer
	client *api.Client
	done   chan struct{}
}

func startDev(t *testing.T, extra ...string) *devCluster {
	t.Helper()
	d := &devCluster{dir: t.TempDir(), stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	job := filepath.Join(d.dir, "sleepers.yaml")
	if err := os.WriteFile(job, []byte(devJob), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := append([]string{"dev", "--agents", "2", "--data-dir", filepath.Join(d.dir, "data"),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--run-example", job}, extra...)
	d.cmd = exec.Command(gantryBin, args...)
	d.cmd.Stderr = d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	if d.stdout, err = d.cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		killTasksUnder(d.dir)
		if t.Failed() {
			t.Logf("--- stderr of gantry dev ---\n%s", testutil.Tail(d.stderr.String(), 6000))
		}
	})
	if d.client, err = api.NewClient(api.Config{Address: fmt.Sprintf("http://127.0.0.1:%d", port)}); err != nil {
		t.Fatal(err)
	}
	// The run example is followed until running; the banner that follows
	// says so.
	sc := bufio.NewScanner(d.stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Ctrl-C stops every job") {
			break
		}
	}
	if sc.Err() != nil {
		t.Fatalf("reading the output of gantry dev: %v", sc.Err())
	}
	testutil.WaitFor(t, 60*time.Second, 200*time.Millisecond, "two running sleepers", func() (bool, string) {
		allocs, _, err := d.client.JobAllocations(context.Background(), "sleepers", nil)
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, a := range allocs {
			if a.ClientStatus == api.AllocClientRunning {
				running++
			}
		}
		return running == 2, fmt.Sprintf("%d running", running)
	})
	if live := liveUnder(d.dir); len(live) < 4 {
		t.Fatalf("want 2 shims and 2 tasks running under %s, found %q", d.dir, live)
	}
	return d
}

// TestDevKilledLeavesNoTasks: `gantry dev` killed with SIGKILL (it cannot
// stop its jobs) still takes its tasks with it.
func TestDevKilledLeavesNoTasks(t *testing.T) {
	d := startDev(t)
	_ = d.cmd.Process.Kill()
	<-d.done
	testutil.WaitFor(t, 60*time.Second, 200*time.Millisecond, "the tasks and shims of the killed dev cluster to end", func() (bool, string) {
		live := liveUnder(d.dir)
		return len(live) == 0, fmt.Sprintf("still running: %q", live)
	})
}

// TestDevBrokenStdoutStopsCleanly is `gantry dev | tee log` then Ctrl-C,
// with three servers: the reader of its output is gone when it prints that
// it is stopping. It must not die of SIGPIPE; it stops its jobs, exits 0,
// leaves no task, and logs no error or panic on the way (a forwarded watch
// cut short, Raft connections closed by the shutdown).
func TestDevBrokenStdoutStopsCleanly(t *testing.T) {
	d := startDev(t, "--servers", "3")
	_ = d.stdout.Close() // tee is gone
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatal("gantry dev did not exit within 60s of SIGINT")
	}
	if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("gantry dev was killed by %v", ws.Signal())
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("gantry dev exited with %d", code)
	}
	if live := liveUnder(d.dir); len(live) > 0 {
		t.Fatalf("tasks left running: %q", live)
	}
	var bad []string
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "panic") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("a clean stop logged errors:\n%s", strings.Join(bad, "\n"))
	}
}
