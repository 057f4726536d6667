package driver

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver/cgroups"
	"github.com/gantry-project/gantry/internal/driver/shim"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

const prSetChildSubreaper = 36

func newTestExec(t *testing.T) *ExecDriver {
	t.Helper()
	d, err := NewExec(ExecOptions{
		ShimCommand:  []string{os.Args[0]},
		PollInterval: 20 * time.Millisecond,
		Cgroups:      cgroups.Disabled("test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func shTask(t *testing.T, script string) *TaskConfig {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "allocs", "a1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &TaskConfig{
		AllocID: "a1", JobID: "web", AllocIndex: 2, JobType: structs.JobTypeService,
		Config:   map[string]any{"command": "/bin/sh", "args": []any{"-c", script}},
		Env:      map[string]string{"FOO": "bar"},
		AllocDir: dir,
	}
}

// waitExit waits for a task to end, with a generous deadline for slow CI.
func waitExit(t *testing.T, task Task) ExitResult {
	t.Helper()
	select {
	case <-task.Exited():
		return task.Result()
	case <-time.After(30 * time.Second):
		t.Fatal("task did not exit within 30s")
		return ExitResult{}
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readLog returns a task's whole log (across rotated files).
func readLog(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := tasklog.ReadAll(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExecValidate(t *testing.T) {
	cases := []struct {
		name   string
		config map[string]any
		fields []string
	}{
		{"ok", map[string]any{"command": "/bin/true", "args": []any{"a"}, "dir": "x"}, nil},
		{"ok yaml strings", map[string]any{"command": "/bin/true", "args": []string{"a"}}, nil},
		{"missing command", map[string]any{}, []string{"command"}},
		{"empty command", map[string]any{"command": ""}, []string{"command"}},
		{"command not string", map[string]any{"command": 3.0}, []string{"command"}},
		{"args not list", map[string]any{"command": "x", "args": "-c"}, []string{"args"}},
		{"arg not string", map[string]any{"command": "x", "args": []any{"ok", 1.0}}, []string{"args[1]"}},
		{"dir not string", map[string]any{"command": "x", "dir": true}, []string{"dir"}},
		{"typo", map[string]any{"comand": "x"}, []string{"comand", "command"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := execSchema.Validate(tc.config)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if e.Rule == "" {
					t.Errorf("field %s: empty rule", e.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields = %v, want %v (%v)", got, tc.fields, errs)
			}
		})
	}
}

func TestExecRunsProcess(t *testing.T) {
	cases := []struct {
		name   string
		script string
		code   int
		stdout string
		stderr string
	}{
		{"success", "echo hello; echo oops >&2", 0, "hello\n", "oops\n"},
		{"exit code", "exit 3", 3, "", ""},
		{"env", `echo "$GANTRY_ALLOC_ID $GANTRY_JOB $GANTRY_ALLOC_INDEX $FOO"; [ -z "$GANTRY_TASK_SHIM" ]`, 0, "a1 web 2 bar\n", ""},
		{"cwd is alloc dir", `[ -f shim.json ] && echo yes`, 0, "yes\n", ""},
	}
	d := newTestExec(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shTask(t, tc.script)
			task, err := d.Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if task.Handle().PID <= 0 {
				t.Errorf("handle has no PID: %+v", task.Handle())
			}
			res := waitExit(t, task)
			if res.ExitCode != tc.code || res.Err != nil {
				t.Fatalf("result = %+v, want exit code %d", res, tc.code)
			}
			if got := readLog(t, cfg.AllocDir, StdoutFile); got != tc.stdout {
				t.Errorf("stdout = %q, want %q", got, tc.stdout)
			}
			if got := readLog(t, cfg.AllocDir, StderrFile); got != tc.stderr {
				t.Errorf("stderr = %q, want %q", got, tc.stderr)
			}
		})
	}
}

func TestExecStartFailure(t *testing.T) {
	d := newTestExec(t)
	cfg := shTask(t, "")
	cfg.Config = map[string]any{"command": "/no/such/program"}
	_, err := d.Start(cfg)
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("err = %v, want ErrStartFailed naming the program", err)
	}
}

func TestExecStopKillsProcessGroup(t *testing.T) {
	d := newTestExec(t)
	// The task's child records its PID; stopping the task must end it too.
	cfg := shTask(t, `sleep 300 & echo $! > child.pid; wait`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(cfg.AllocDir, "child.pid")
	eventually(t, "child.pid", func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	child, _ := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	start, err := shim.StartTime(child)
	if err != nil {
		t.Fatalf("child %d not running: %v", child, err)
	}
	if err := task.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	res := task.Result()
	if res.Signal != int(syscall.SIGTERM) {
		t.Errorf("result = %+v, want killed by SIGTERM", res)
	}
	eventually(t, "child to die", func() bool { return !shim.Alive(child, start) })
}

func TestExecStopEscalatesToKill(t *testing.T) {
	d := newTestExec(t)
	// Ignoring SIGTERM (inherited by sleep) forces the SIGKILL after grace.
	cfg := shTask(t, `trap "" TERM; echo ready; sleep 300`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "task ready", func() bool {
		b, _ := tasklog.ReadAll(cfg.AllocDir, StdoutFile)
		return string(b) == "ready\n"
	})
	if err := task.Stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if res := task.Result(); res.Signal != int(syscall.SIGKILL) {
		t.Errorf("result = %+v, want killed by SIGKILL", res)
	}
}

// TestShimSurvivesParent starts a task from a separate process that exits at
// once, then re-attaches by the saved handle and learns the exit code.
func TestShimSurvivesParent(t *testing.T) {
	// Become the subreaper so the orphaned shim is re-parented to this
	// process (which reaps it) rather than to a container init that may not.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Logf("PR_SET_CHILD_SUBREAPER: %v (the shim may stay a zombie)", errno)
	}
	cfg := shTask(t, `while [ ! -f go ]; do sleep 0.02; done; exit 7`)
	dir := t.TempDir()
	ls := launchSpec{Task: *cfg, HandleFile: filepath.Join(dir, "handle.json")}
	specPath := filepath.Join(dir, "launch.json")
	if err := shim.WriteJSONAtomic(specPath, ls); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "GANTRY_TEST_LAUNCH="+specPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("launcher: %v: %s", err, out)
	}
	var h Handle
	if err := json.Unmarshal([]byte(readFile(t, ls.HandleFile)), &h); err != nil {
		t.Fatal(err)
	}
	d := newTestExec(t)
	task, err := d.Recover(&h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-task.Exited():
		t.Fatalf("task ended with its launcher: %+v", task.Result())
	default:
	}
	if err := os.WriteFile(filepath.Join(cfg.AllocDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, task); res.ExitCode != 7 || res.Err != nil {
		t.Fatalf("result = %+v, want exit code 7", res)
	}
}

func TestExecRecoverAfterExitWhileDetached(t *testing.T) {
	d := newTestExec(t)
	cfg := shTask(t, `while [ ! -f go ]; do sleep 0.02; done; exit 5`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	task.Detach()
	if err := os.WriteFile(filepath.Join(cfg.AllocDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "exit file", func() bool {
		_, err := os.Stat(filepath.Join(cfg.AllocDir, shimExitFile))
		return err == nil
	})
	again, err := d.Recover(task.Handle(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, again); res.ExitCode != 5 {
		t.Fatalf("result = %+v, want exit code 5", res)
	}
}

func TestExecRecoverLostTask(t *testing.T) {
	d := newTestExec(t)
	cfg := shTask(t, `sleep 300`)
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	task.Detach()
	var st execState
	if err := json.Unmarshal(task.Handle().State, &st); err != nil {
		t.Fatal(err)
	}
	// The shim dies without writing an exit record; its task keeps running.
	if err := syscall.Kill(st.ShimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again, err := d.Recover(task.Handle(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, again)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "lost") {
		t.Fatalf("result = %+v, want a lost task", res)
	}
	eventually(t, "orphaned task to be killed", func() bool { return !shim.Alive(st.TaskPID, st.TaskStart) })
}

func TestExecRecoverRejectsBadHandle(t *testing.T) {
	d := newTestExec(t)
	cases := []*Handle{
		nil,
		{Driver: "mock"},
		{Driver: "exec", State: json.RawMessage(`{}`)},
		{Driver: "exec", State: json.RawMessage(`garbage`)},
	}
	for i, h := range cases {
		if _, err := d.Recover(h, &TaskConfig{}); err == nil {
			t.Errorf("case %d: Recover(%+v) succeeded", i, h)
		}
	}
}

// With a cgroup root that is a plain directory, the limits are written, the
// start inside the "cgroup" fails and the shim runs the task without it,
// then removes the directory.
func TestExecCgroupFallback(t *testing.T) {
	root := t.TempDir()
	d, err := NewExec(ExecOptions{ShimCommand: []string{os.Args[0]}, PollInterval: 20 * time.Millisecond, Cgroups: cgroups.ForRoot(root)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := shTask(t, "echo ran")
	cfg.Resources = structs.Resources{CPU: 500, MemoryMB: 64}
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, task); res.ExitCode != 0 {
		t.Fatalf("result = %+v", res)
	}
	if got := readLog(t, cfg.AllocDir, StdoutFile); got != "ran\n" {
		t.Errorf("stdout = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "gantry", "a1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup dir not removed: %v", err)
	}
}

// BenchmarkExecStartWait is the cost of running a trivial task through the
// shim: start, exit, exit observed.
func BenchmarkExecStartWait(b *testing.B) {
	d, err := NewExec(ExecOptions{ShimCommand: []string{os.Args[0]}, PollInterval: 5 * time.Millisecond, Cgroups: cgroups.Disabled("bench")})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := &TaskConfig{AllocID: "a", AllocDir: dir, Config: map[string]any{"command": "/bin/true"}}
	for i := 0; i < b.N; i++ {
		task, err := d.Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		<-task.Exited()
	}
}

func TestExecShimNeverReports(t *testing.T) {
	// A "shim" that never reports a start is killed after StartTimeout.
	d, err := NewExec(ExecOptions{ShimCommand: []string{"/bin/sleep", "300"}, StartTimeout: 200 * time.Millisecond, Cgroups: cgroups.Disabled("test")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := shTask(t, "true")
	_, err = d.Start(cfg)
	if err == nil || !strings.Contains(err.Error(), "did not report a start") || errors.Is(err, ErrStartFailed) {
		t.Fatalf("err = %v", err)
	}
}

func TestExecRefusesRelativeAllocDir(t *testing.T) {
	d := newTestExec(t)
	cfg := shTask(t, "true")
	cfg.AllocDir = "relative/dir"
	if _, err := d.Start(cfg); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("err = %v", err)
	}
}
