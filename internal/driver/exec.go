package driver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/driver/cgroups"
	"github.com/gantry-project/gantry/internal/driver/shim"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// execSchema is what the exec driver accepts in a job's config block.
var execSchema = driverschema.Schema{Driver: "exec", Options: []driverschema.Option{
	{Name: "command", Kind: driverschema.KindString, Required: true, Doc: "the program to run, e.g. \"/bin/sh\""},
	{Name: "args", Kind: driverschema.KindStringList, Doc: "its arguments"},
	{Name: "dir", Kind: driverschema.KindString, Doc: "its working directory, relative to the allocation directory (default: that directory)"},
}}

func init() { driverschema.Register(execSchema) }

// Files of a task in its allocation directory. StdoutFile and StderrFile
// name the logs, kept as rotated "<name>.<offset>" files: read them with
// package tasklog.
const (
	StdoutFile   = "stdout.log"
	StderrFile   = "stderr.log"
	shimSpecFile = "shim.json"
	shimLogFile  = "shim.log"
	shimPIDFile  = "shim.pid"
	shimExitFile = "exit.json"
)

// ExecOptions configure the exec driver.
type ExecOptions struct {
	// ShimCommand is the argv that runs the task shim; the default is this
	// binary as "gantry task-shim". Tests pass the test binary, whose
	// TestMain calls shim.Main when GANTRY_TASK_SHIM=1.
	ShimCommand []string
	Logger      *slog.Logger
	// PollInterval is how often a task's shim is checked for exit
	// (default 200ms).
	PollInterval time.Duration
	// StartTimeout bounds the wait for the shim to report the start
	// (default 30s).
	StartTimeout time.Duration
	// Cgroups enforces limits; nil probes /sys/fs/cgroup.
	Cgroups *cgroups.Manager
	// Lifeline, when set, is the read end of a pipe whose write end only
	// this process holds. Every shim inherits it and stops its task (SIGTERM,
	// SIGKILL after KillTimeout) once the pipe reaches end of file, which is
	// when this process is gone, however it died. gantry dev sets it so its
	// tasks die with it; a real agent leaves it nil, so its tasks survive
	// the agent's restarts.
	Lifeline *os.File
	// KillTimeout is the grace a shim gives its task between SIGTERM and
	// SIGKILL when it stops it on its own (lifeline broken); default 5s.
	KillTimeout time.Duration
}

// ExecDriver runs a task as a real process under a task shim.
type ExecDriver struct {
	opts ExecOptions
	log  *slog.Logger
}

var _ Driver = (*ExecDriver)(nil)

// NewExec returns the exec driver. It logs once whether cgroup limits are
// enforced on this host.
func NewExec(opts ExecOptions) (*ExecDriver, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.ShimCommand) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("exec driver: locating the gantry binary for the task shim: %w", err)
		}
		opts.ShimCommand = []string{self, "task-shim"}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.KillTimeout <= 0 {
		opts.KillTimeout = 5 * time.Second
	}
	if opts.Cgroups == nil {
		opts.Cgroups = cgroups.Detect("")
	}
	if opts.Cgroups.Enabled() {
		opts.Logger.Info("exec driver: cgroup v2 CPU and memory limits enforced")
	} else {
		opts.Logger.Warn("exec driver: CPU and memory limits are not enforced", "reason", opts.Cgroups.Reason())
	}
	return &ExecDriver{opts: opts, log: opts.Logger}, nil
}

// Name implements Driver.
func (d *ExecDriver) Name() string { return "exec" }

// Validate implements Driver.
func (d *ExecDriver) Validate(config map[string]any) []structs.FieldError {
	return execSchema.Validate(config)
}

type execConfig struct {
	Command string
	Args    []string
	Dir     string
}

func parseExec(config map[string]any) (execConfig, []structs.FieldError) {
	if errs := execSchema.Validate(config); len(errs) > 0 {
		return execConfig{}, errs
	}
	return execConfig{
		Command: driverschema.String(config, "command"),
		Args:    driverschema.Strings(config, "args"),
		Dir:     driverschema.String(config, "dir"),
	}, nil
}

// execState is the exec driver's part of a Handle.
type execState struct {
	ShimPID   int    `json:"shim_pid"`
	ShimStart uint64 `json:"shim_start"`
	TaskPID   int    `json:"task_pid"`
	TaskStart uint64 `json:"task_start"`
	CgroupDir string `json:"cgroup_dir,omitempty"`
}

// Start implements Driver: it launches the shim in a new session and waits
// for it to report that the task started.
func (d *ExecDriver) Start(cfg *TaskConfig) (Task, error) {
	c, errs := parseExec(cfg.Config)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: invalid exec config: %w", ErrStartFailed, errs[0])
	}
	if !filepath.IsAbs(cfg.AllocDir) {
		// The shim runs inside the alloc dir; a relative path would
		// resolve against it.
		return nil, fmt.Errorf("alloc %s: alloc dir %q must be an absolute path", cfg.AllocID, cfg.AllocDir)
	}
	if err := os.MkdirAll(cfg.AllocDir, 0o755); err != nil {
		return nil, fmt.Errorf("alloc %s: creating alloc dir: %w", cfg.AllocID, err)
	}
	p := func(name string) string { return filepath.Join(cfg.AllocDir, name) }
	// A restart in place reuses the directory; the previous run's records
	// must not be mistaken for this one's.
	for _, f := range []string{shimPIDFile, shimExitFile} {
		if err := os.Remove(p(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("alloc %s: clearing %s: %w", cfg.AllocID, f, err)
		}
	}
	dir := c.Dir
	if dir == "" {
		dir = cfg.AllocDir
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join(cfg.AllocDir, dir)
	}
	logs := cfg.Logs.WithDefaults()
	spec := &shim.Spec{
		Command: c.Command, Args: c.Args, Dir: dir, Env: taskEnv(cfg),
		Stdout: p(StdoutFile), Stderr: p(StderrFile),
		LogMaxFiles: logs.MaxFiles, LogMaxFileSize: int64(logs.MaxFileSizeMB) << 20,
		PIDFile: p(shimPIDFile), ExitFile: p(shimExitFile),
		KillTimeoutMS: d.opts.KillTimeout.Milliseconds(),
	}
	if d.opts.Cgroups.Enabled() {
		// One cgroup per task: an extra task of the allocation (task
		// groups) gets its own, limited by its own resources.
		name := cfg.AllocID
		if cfg.TaskName != "" {
			name += "." + cfg.TaskName
		}
		cg, err := d.opts.Cgroups.Create(name, cfg.Resources.CPU, cfg.Resources.MemoryMB)
		if err != nil {
			d.log.Warn("exec driver: running task without limits", "alloc", cfg.AllocID, "err", err)
		}
		spec.CgroupDir = cg
	}
	if err := shim.WriteJSONAtomic(p(shimSpecFile), spec); err != nil {
		return nil, fmt.Errorf("alloc %s: writing shim spec: %w", cfg.AllocID, err)
	}
	st, err := d.launch(cfg, p(shimSpecFile), p(shimLogFile))
	if err != nil {
		_ = cgroups.Remove(spec.CgroupDir)
		return nil, err
	}
	st.CgroupDir = spec.CgroupDir
	raw, _ := json.Marshal(st)
	h := &Handle{Driver: d.Name(), AllocID: cfg.AllocID, AllocDir: cfg.AllocDir,
		StartedAt: time.Now().UnixNano(), PID: st.TaskPID, State: raw}
	t := d.newTask(h, st, true)
	t.cfg = cfg
	go t.watch()
	return t, nil
}

// launch starts the shim and reads its ready line.
func (d *ExecDriver) launch(cfg *TaskConfig, specPath, logPath string) (execState, error) {
	var st execState
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return st, fmt.Errorf("alloc %s: opening shim log: %w", cfg.AllocID, err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return st, err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return st, fmt.Errorf("alloc %s: ready pipe: %w", cfg.AllocID, err)
	}
	defer pr.Close()
	env := append(os.Environ(), shim.EnvMarker+"=1", shim.EnvSpec+"="+specPath, shim.EnvReadyFD+"=3")
	files := []*os.File{devnull, logf, logf, pw}
	if d.opts.Lifeline != nil {
		env = append(env, shim.EnvLifelineFD+"=4")
		files = append(files, d.opts.Lifeline)
	}
	proc, err := os.StartProcess(d.opts.ShimCommand[0], d.opts.ShimCommand, &os.ProcAttr{
		Dir:   cfg.AllocDir,
		Env:   env,
		Files: files,
		// A new session: the shim survives the agent's exit and is out of
		// reach of signals sent to the agent's process group or terminal.
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	pw.Close()
	if err != nil {
		return st, fmt.Errorf("alloc %s: starting task shim %q: %w", cfg.AllocID, d.opts.ShimCommand[0], err)
	}
	st.ShimPID = proc.Pid
	st.ShimStart, _ = shim.StartTime(proc.Pid)
	// We reap the shim ourselves (wait4 while polling), so a watcher can be
	// detached without leaving a goroutine blocked in Wait.
	_ = proc.Release()

	type result struct {
		r   shim.Ready
		err error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadBytes('\n')
		var r shim.Ready
		if err == nil || (errors.Is(err, io.EOF) && len(line) > 0) {
			err = json.Unmarshal(line, &r)
		}
		ch <- result{r, err}
	}()
	_ = pr.SetReadDeadline(time.Now().Add(d.opts.StartTimeout))
	res := <-ch
	switch {
	case res.err != nil:
		_ = syscall.Kill(st.ShimPID, syscall.SIGKILL)
		reap(st.ShimPID)
		killRecordedTask(filepath.Join(cfg.AllocDir, shimPIDFile))
		return st, fmt.Errorf("alloc %s: task shim did not report a start (see %s): %w", cfg.AllocID, logPath, res.err)
	case res.r.Error != "":
		reap(st.ShimPID)
		return st, fmt.Errorf("%w: %s", ErrStartFailed, res.r.Error)
	}
	st.TaskPID = res.r.TaskPID
	st.TaskStart, _ = shim.StartTime(st.TaskPID)
	return st, nil
}

// killRecordedTask kills the task a shim recorded in its PID file, so a
// start reported as failed leaves nothing running.
func killRecordedTask(pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	var rec shim.PIDRecord
	if json.Unmarshal(b, &rec) == nil && shim.Alive(rec.TaskPID, rec.TaskStart) {
		_ = syscall.Kill(-rec.TaskPID, syscall.SIGKILL)
	}
}

// reap collects an exited (or exiting) child shim, waiting briefly.
func reap(pid int) {
	for i := 0; i < 100; i++ {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Recover implements Driver: it re-attaches to the shim by PID and start
// time. It never starts anything.
func (d *ExecDriver) Recover(h *Handle, cfg *TaskConfig) (Task, error) {
	if h == nil || h.Driver != d.Name() {
		return nil, fmt.Errorf("exec driver: cannot recover a handle of driver %q", handleDriver(h))
	}
	var st execState
	if err := json.Unmarshal(h.State, &st); err != nil || st.ShimPID <= 0 {
		return nil, fmt.Errorf("alloc %s: exec handle has no usable shim PID (state %s)", h.AllocID, string(h.State))
	}
	t := d.newTask(h, st, true)
	t.cfg = cfg
	if t.shimGone() {
		t.finish()
		return t, nil
	}
	go t.watch()
	return t, nil
}

func handleDriver(h *Handle) string {
	if h == nil {
		return ""
	}
	return h.Driver
}

// taskEnv is a small base environment from the agent (not all of it: the
// agent's settings are not the task's business), the job's env and the
// GANTRY_* variables.
func taskEnv(cfg *TaskConfig) []string {
	env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin"}
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	env["GANTRY_ALLOC_ID"] = cfg.AllocID
	env["GANTRY_JOB"] = cfg.JobID
	env["GANTRY_ALLOC_INDEX"] = strconv.Itoa(cfg.AllocIndex)
	env["GANTRY_ALLOC_DIR"] = cfg.AllocDir
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// execTask watches one shim.
type execTask struct {
	d      *ExecDriver
	h      *Handle
	st     execState
	exited chan struct{}
	detach chan struct{}
	// cfg is what the task was started with: alloc exec runs commands
	// in its environment and directory (exec_session.go).
	cfg *TaskConfig

	mu       sync.Mutex
	child    bool // the shim may be our child: reap it with wait4
	result   ExitResult
	done     bool
	detached bool
}

func (d *ExecDriver) newTask(h *Handle, st execState, child bool) *execTask {
	return &execTask{d: d, h: h, st: st, child: child,
		exited: make(chan struct{}), detach: make(chan struct{})}
}

func (t *execTask) Handle() *Handle         { return t.h }
func (t *execTask) Exited() <-chan struct{} { return t.exited }

func (t *execTask) Result() ExitResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

func (t *execTask) Detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.detached {
		t.detached = true
		close(t.detach)
	}
}

func (t *execTask) watch() {
	tick := time.NewTicker(t.d.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.detach:
			return
		case <-tick.C:
		}
		if t.shimGone() {
			t.finish()
			return
		}
	}
}

// shimGone reports whether the shim has exited, reaping it if it is our
// child. A PID now used by another process (start time differs) is gone.
func (t *execTask) shimGone() bool {
	pid := t.st.ShimPID
	info, err := shim.ReadProc(pid)
	if err != nil {
		return true
	}
	if t.st.ShimStart != 0 && info.StartTime != t.st.ShimStart {
		return true
	}
	if t.child {
		var ws syscall.WaitStatus
		got, werr := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid {
			return true
		}
		if errors.Is(werr, syscall.ECHILD) {
			t.child = false // adopted by init after an agent restart
		}
	}
	return info.State == 'Z' || info.State == 'X'
}

// finish reads the exit record the shim left; without one the task is lost,
// and a task still running without its shim is killed so it cannot run
// unsupervised (and be started a second time elsewhere).
func (t *execTask) finish() {
	res := ExitResult{FinishedAt: time.Now()}
	var rec shim.ExitRecord
	b, err := os.ReadFile(filepath.Join(t.h.AllocDir, shimExitFile))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err == nil {
		res.ExitCode, res.Signal = rec.ExitCode, rec.Signal
		if rec.FinishedAt > 0 {
			res.FinishedAt = time.Unix(0, rec.FinishedAt)
		}
		if rec.Error != "" {
			res.Err = fmt.Errorf("task did not start: %s", rec.Error)
		}
	} else {
		msg := fmt.Sprintf("task lost: its supervisor (task-shim pid %d) is gone and left no exit code", t.st.ShimPID)
		if shim.Alive(t.st.TaskPID, t.st.TaskStart) {
			_ = syscall.Kill(-t.st.TaskPID, syscall.SIGKILL)
			msg += fmt.Sprintf("; killed the orphaned task (pid %d)", t.st.TaskPID)
		}
		res.Err = errors.New(msg)
		res.ExitCode = -1
		_ = cgroups.Remove(t.st.CgroupDir)
	}
	t.mu.Lock()
	if !t.done {
		t.done = true
		t.result = res
		close(t.exited)
	}
	t.mu.Unlock()
}

// Stop implements Task: SIGTERM to the shim (which forwards it to the
// task's process group), SIGKILL to the group after grace.
func (t *execTask) Stop(grace time.Duration) error {
	select {
	case <-t.exited:
		return nil
	default:
	}
	t.mu.Lock()
	detached := t.detached
	t.mu.Unlock()
	if detached {
		return fmt.Errorf("alloc %s: task is detached", t.h.AllocID)
	}
	if shim.Alive(t.st.ShimPID, t.st.ShimStart) {
		_ = syscall.Kill(t.st.ShimPID, syscall.SIGTERM)
	} else if shim.Alive(t.st.TaskPID, t.st.TaskStart) {
		_ = syscall.Kill(-t.st.TaskPID, syscall.SIGTERM)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.exited:
		return nil
	case <-timer.C:
	}
	if shim.Alive(t.st.TaskPID, t.st.TaskStart) {
		_ = syscall.Kill(-t.st.TaskPID, syscall.SIGKILL)
	}
	// The shim writes the exit record and exits once its task is reaped.
	timer.Reset(5 * time.Second)
	select {
	case <-t.exited:
		return nil
	case <-timer.C:
	}
	if shim.Alive(t.st.ShimPID, t.st.ShimStart) {
		_ = syscall.Kill(t.st.ShimPID, syscall.SIGKILL)
	}
	timer.Reset(5 * time.Second)
	select {
	case <-t.exited:
		return nil
	case <-timer.C:
		return fmt.Errorf("alloc %s: task (shim pid %d) did not exit after SIGKILL", t.h.AllocID, t.st.ShimPID)
	}
}
