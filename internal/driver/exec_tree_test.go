package driver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/driver/shim"
)

// escapeScript double-forks a sleeper into a session of its own (out of
// the task's process group, re-parented away from the task) and records
// its PID in escaped.pid.
const escapeScript = `(setsid sh -c 'echo $$ > escaped.tmp; mv escaped.tmp escaped.pid; exec sleep 300' &)
while [ ! -s escaped.pid ]; do sleep 0.01; done
`

// escaped waits for the escaped sleeper's PID and checks it really left
// the task's session.
func escaped(t *testing.T, cfg *TaskConfig, task Task) (int, uint64) {
	t.Helper()
	path := filepath.Join(cfg.AllocDir, "escaped.pid")
	eventually(t, "escaped.pid", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	start, err := shim.StartTime(pid)
	if err != nil {
		t.Fatalf("escaped process %d: %v", pid, err)
	}
	sid, err := unix.Getsid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if task.Handle().PID > 0 {
		if tsid, err := unix.Getsid(task.Handle().PID); err == nil && tsid == sid {
			t.Fatalf("the sleeper did not leave the task's session %d", sid)
		}
	}
	return pid, start
}

func requireSetsid(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid(1) not installed")
	}
}

// TestExecStopKillsEscapedProcesses: a process that double-forked and
// called setsid is out of the task's process group, yet a stop ends it.
func TestExecStopKillsEscapedProcesses(t *testing.T) {
	requireSetsid(t)
	d := newTestExec(t)
	cfg := shTask(t, escapeScript+"sleep 300")
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pid, start := escaped(t, cfg, task)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := task.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the escaped sleeper to die", func() bool { return !shim.Alive(pid, start) })
}

// TestExecExitKillsEscapedProcesses: when the task's main process exits on
// its own, what it left behind in other sessions dies with it.
func TestExecExitKillsEscapedProcesses(t *testing.T) {
	requireSetsid(t)
	d := newTestExec(t)
	// The task waits for the test to note the sleeper before it exits.
	cfg := shTask(t, escapeScript+"while [ ! -f go ]; do sleep 0.01; done; exit 4")
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pid, start := escaped(t, cfg, task)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := os.WriteFile(filepath.Join(cfg.AllocDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, task); res.ExitCode != 4 {
		t.Fatalf("result = %+v, want exit code 4", res)
	}
	eventually(t, "the escaped sleeper to die", func() bool { return !shim.Alive(pid, start) })
}

// TestExecLogsBoundedByDefault: a job without a logs block still gets
// rotation (10 files of 10 MiB): 25 MB of output never sits in one file,
// and every byte is kept.
func TestExecLogsBoundedByDefault(t *testing.T) {
	const size = 25_000_000
	d := newTestExec(t)
	cfg := shTask(t, `yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijk | head -c `+strconv.Itoa(size))
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, task); res.ExitCode != 0 {
		t.Fatalf("result = %+v", res)
	}
	entries, err := os.ReadDir(cfg.AllocDir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), StdoutFile) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 10<<20 {
			t.Errorf("%s holds %d bytes, over the default 10 MiB per file", e.Name(), info.Size())
		}
		total += info.Size()
	}
	if total != size {
		t.Errorf("the log files hold %d bytes, want all %d", total, size)
	}
}

// TestExecTaskSignalDefaults: the task starts with default signal
// dispositions. The shim must survive hang-ups itself, but an ignored
// disposition passes through exec: the task could then not be stopped by
// SIGHUP nor end at a closed pipe (`yes | head` would spin in some programs).
func TestExecTaskSignalDefaults(t *testing.T) {
	d := newTestExec(t)
	cfg := shTask(t, `grep SigIgn /proc/self/status`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, task); res.ExitCode != 0 {
		t.Fatalf("result = %+v", res)
	}
	// Read the log files directly, as the base layout (one stdout.log)
	// and the rotated one (stdout.log.0) both match.
	line := ""
	entries, _ := os.ReadDir(cfg.AllocDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), StdoutFile) {
			b, _ := os.ReadFile(filepath.Join(cfg.AllocDir, e.Name()))
			line += string(b)
		}
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("task output %q, want a SigIgn line", line)
	}
	mask, err := strconv.ParseUint(f[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGPIPE} {
		if mask&(1<<(uint(sig)-1)) != 0 {
			t.Errorf("the task starts with %v ignored (SigIgn %s)", sig, f[1])
		}
	}
}
