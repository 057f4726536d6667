// Package shim is the small supervisor that runs one exec task so the task
// outlives the agent that started it.
//
// The agent re-executes its own binary as "gantry task-shim" in a new
// session. The shim becomes a child subreaper (so whatever the task starts
// stays below it, even after a double fork or setsid), starts the task in
// its own process group (inside the allocation's cgroup when there is one)
// with its stdout and stderr on pipes the shim copies into rotated log files
// (package tasklog), records the task's PID and later its exit code in files
// of the allocation directory (write then rename, so a reader never sees
// half a file), passes SIGTERM/SIGINT on to every process of the task, and
// once the task's main process has exited kills whatever it left, drains the
// logs and exits. An agent restarted on the same data dir re-attaches by the
// shim's PID and reads the exit code from the file; nothing here depends on
// the agent staying alive, unless the agent asked for a lifeline (gantry
// dev): then the task is stopped when the agent's process dies.
package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/driver/cgroups"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/durable"
)

// Environment variables of the shim process (never passed to the task).
const (
	// EnvMarker is set to "1" in the shim's environment; a program that
	// embeds the shim (gantry itself, or a test binary) checks it first.
	EnvMarker = "GANTRY_TASK_SHIM"
	// EnvSpec is the path of the JSON Spec to run.
	EnvSpec = "GANTRY_SHIM_SPEC"
	// EnvReadyFD is the descriptor on which the shim reports the start.
	EnvReadyFD = "GANTRY_SHIM_READY_FD"
	// EnvLifelineFD, when set, is the read end of a pipe whose write end
	// only the agent's process holds. End of file on it means that process
	// is gone (however it died: the kernel closes its descriptors), and the
	// shim stops the task: SIGTERM, then SIGKILL after Spec.KillTimeoutMS.
	EnvLifelineFD = "GANTRY_SHIM_LIFELINE_FD"
)

// Defaults for specs written before the fields existed.
const (
	defaultLogMaxFiles    = 10
	defaultLogMaxFileSize = 10 << 20
	defaultKillTimeout    = 5 * time.Second
	// drainTimeout bounds the wait for the log pipes to close after every
	// process of the task is dead (only a process outside the task, handed
	// the pipe, could hold them open).
	drainTimeout = 5 * time.Second
)

// Spec is what the shim runs; the driver writes it as JSON.
type Spec struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	Dir     string   `json:"dir,omitempty"`
	Env     []string `json:"env"`
	// Stdout and Stderr name the task's logs: the files are
	// "<path>.<offset>" (package tasklog), at most LogMaxFiles of at most
	// LogMaxFileSize bytes each.
	Stdout         string `json:"stdout"`
	Stderr         string `json:"stderr"`
	LogMaxFiles    int    `json:"log_max_files,omitempty"`
	LogMaxFileSize int64  `json:"log_max_file_size,omitempty"`
	// PIDFile and ExitFile receive a PIDRecord and an ExitRecord.
	PIDFile  string `json:"pid_file"`
	ExitFile string `json:"exit_file"`
	// CgroupDir, when set, is the cgroup the task starts in; the shim
	// removes it after the task ends.
	CgroupDir string `json:"cgroup_dir,omitempty"`
	// KillTimeoutMS is the grace between SIGTERM and SIGKILL when the shim
	// stops the task on its own (its lifeline broke).
	KillTimeoutMS int64 `json:"kill_timeout_ms,omitempty"`
}

// PIDRecord identifies the shim and its task. Start times are field 22 of
// /proc/<pid>/stat (clock ticks since boot): with the PID they identify a
// process across PID reuse.
type PIDRecord struct {
	ShimPID   int    `json:"shim_pid"`
	ShimStart uint64 `json:"shim_start"`
	TaskPID   int    `json:"task_pid"`
	TaskStart uint64 `json:"task_start"`
}

// ExitRecord is how the task ended.
type ExitRecord struct {
	ExitCode   int    `json:"exit_code"`
	Signal     int    `json:"signal,omitempty"`
	Error      string `json:"error,omitempty"` // the task never started
	FinishedAt int64  `json:"finished_at"`     // unix nanoseconds
}

// Ready is the one JSON line the shim writes on the ready descriptor.
type Ready struct {
	TaskPID int    `json:"task_pid,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Main runs the shim from the environment and returns the process exit code.
// Call it as os.Exit(shim.Main()) when os.Getenv(EnvMarker) == "1".
func Main() int {
	ready := inheritedFile(EnvReadyFD, "ready")
	lifeline := inheritedFile(EnvLifelineFD, "lifeline")
	path := os.Getenv(EnvSpec)
	if path == "" && len(os.Args) > 1 {
		path = os.Args[len(os.Args)-1]
	}
	spec, err := ReadSpec(path)
	if err != nil {
		report(ready, Ready{Error: err.Error()})
		fmt.Fprintln(os.Stderr, "task-shim:", err)
		return 2
	}
	if err := Run(spec, ready, lifeline); err != nil {
		fmt.Fprintln(os.Stderr, "task-shim:", err)
		return 1
	}
	return 0
}

// inheritedFile opens the descriptor named by the environment variable env,
// keeping it out of the task.
func inheritedFile(env, name string) *os.File {
	fd, err := strconv.Atoi(os.Getenv(env))
	if err != nil || fd <= 2 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name)
}

// ReadSpec loads a Spec file.
func ReadSpec(path string) (*Spec, error) {
	if path == "" {
		return nil, fmt.Errorf("no spec: set %s to the spec file", EnvSpec)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("spec %s: %w", path, err)
	}
	if s.Command == "" || s.PIDFile == "" || s.ExitFile == "" {
		return nil, fmt.Errorf("spec %s: command, pid_file and exit_file are required", path)
	}
	return &s, nil
}

// Run supervises the task of spec until it ends. ready (may be nil) gets one
// Ready line once the task started or failed to; lifeline (may be nil) is
// the read end of the agent's lifeline pipe (EnvLifelineFD).
//
// Run reaps every child of the process and makes it a subreaper: call it
// only in the shim's own process.
func Run(spec *Spec, ready, lifeline *os.File) error {
	// Forward termination requests. Hang-ups and broken pipes must not end
	// the shim; they are caught and dropped, not ignored, because an ignored
	// disposition would pass through exec to the task, which must start
	// with the defaults.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGPIPE)
	self := os.Getpid()
	if err := setChildSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "task-shim: PR_SET_CHILD_SUBREAPER: %v; processes that leave the task's session may survive a stop\n", err)
	}

	out, err := openOutput(spec)
	var cmd *exec.Cmd
	if err == nil {
		cmd, err = start(spec, out.taskStdout, out.taskStderr)
		out.closeTaskEnds()
		if err != nil {
			out.close()
		}
	}
	if err != nil {
		rec := ExitRecord{ExitCode: 127, Error: err.Error(), FinishedAt: time.Now().UnixNano()}
		_ = WriteJSONAtomic(spec.ExitFile, rec)
		_ = cgroups.Remove(spec.CgroupDir)
		report(ready, Ready{Error: err.Error()})
		return err
	}
	pid := cmd.Process.Pid
	// We reap the task ourselves (with every orphan re-parented to us).
	_ = cmd.Process.Release()
	exited := make(chan syscall.WaitStatus, 1)
	go reapChildren(pid, exited)
	out.copy()

	rec := PIDRecord{ShimPID: self, TaskPID: pid}
	rec.ShimStart, _ = StartTime(rec.ShimPID)
	rec.TaskStart, _ = StartTime(pid)
	if err := WriteJSONAtomic(spec.PIDFile, rec); err != nil {
		// Without the PID file a restarted agent still finds the shim by
		// the PID in its handle; go on.
		fmt.Fprintln(os.Stderr, "task-shim: writing pid file:", err)
	}
	report(ready, Ready{TaskPID: pid})

	ws := supervise(spec, self, pid, sigs, watchLifeline(lifeline), exited)
	exit := ExitRecord{FinishedAt: time.Now().UnixNano()}
	if ws.Signaled() {
		exit.Signal = int(ws.Signal())
		exit.ExitCode = 128 + exit.Signal
	} else {
		exit.ExitCode = ws.ExitStatus()
	}
	// Nothing the task started outlives it: its group, the processes that
	// left the group or the session (re-parented to us), its cgroup.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = cgroups.Kill(spec.CgroupDir)
	killTree(self)
	if err := cgroups.Remove(spec.CgroupDir); err != nil {
		fmt.Fprintln(os.Stderr, "task-shim:", err)
	}
	// The exit record comes last: when the agent sees it, the logs hold
	// everything the task wrote.
	out.drain(drainTimeout)
	if err := WriteJSONAtomic(spec.ExitFile, exit); err != nil {
		return fmt.Errorf("writing exit file: %w", err)
	}
	return nil
}

// supervise waits for the task's main process to exit, passing termination
// requests on to every process of the task. A broken lifeline is a
// termination request the shim escalates itself, since nobody else will.
func supervise(spec *Spec, self, pid int, sigs <-chan os.Signal, lifeline <-chan struct{}, exited <-chan syscall.WaitStatus) syscall.WaitStatus {
	grace := time.Duration(spec.KillTimeoutMS) * time.Millisecond
	if grace <= 0 {
		grace = defaultKillTimeout
	}
	var kill <-chan time.Time
	for {
		select {
		case ws := <-exited:
			return ws
		case <-sigs:
			terminate(self, pid)
		case <-lifeline:
			fmt.Fprintln(os.Stderr, "task-shim: the agent process is gone; stopping the task")
			lifeline = nil
			terminate(self, pid)
			kill = time.After(grace)
		case <-kill:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = cgroups.Kill(spec.CgroupDir)
			killTree(self)
		}
	}
}

// terminate sends SIGTERM to the task's process group (its main process is
// not reaped yet, so the group ID cannot name anything else) and to every
// other process below the shim: those that left the group.
func terminate(self, pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	signalTree(self, syscall.SIGTERM, pid)
}

// reapChildren collects every child of the shim: the task (its status goes
// to exited) and the orphans re-parented to the shim as a subreaper, which
// would otherwise stay zombies. It returns when no child is left.
func reapChildren(task int, exited chan<- syscall.WaitStatus) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		if pid == task {
			exited <- ws
		}
	}
}

// watchLifeline returns a channel closed when the lifeline pipe reaches end
// of file (every write end closed), or nil without a lifeline.
func watchLifeline(f *os.File) <-chan struct{} {
	if f == nil {
		return nil
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		buf := make([]byte, 64)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
		}
	}()
	return ch
}

// output is the task's stdout and stderr: pipes whose write ends the task
// gets and whose read ends the shim copies into rotated logs.
type output struct {
	taskStdout, taskStderr *os.File
	readers                [2]*os.File
	writers                [2]*tasklog.Writer
	wg                     sync.WaitGroup
}

func openOutput(spec *Spec) (*output, error) {
	files, size := spec.LogMaxFiles, spec.LogMaxFileSize
	if files <= 0 {
		files = defaultLogMaxFiles
	}
	if size <= 0 {
		size = defaultLogMaxFileSize
	}
	o := &output{}
	for i, path := range []string{spec.Stdout, spec.Stderr} {
		w, err := tasklog.OpenWriter(filepath.Dir(path), filepath.Base(path), files, size)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("opening the task's log: %w", err)
		}
		o.writers[i] = w
		r, tw, err := os.Pipe()
		if err != nil {
			o.close()
			return nil, fmt.Errorf("creating the task's output pipe: %w", err)
		}
		o.readers[i] = r
		if i == 0 {
			o.taskStdout = tw
		} else {
			o.taskStderr = tw
		}
	}
	return o, nil
}

// closeTaskEnds closes the shim's copies of the pipes' write ends: the
// logs then end when the last process of the task closes its copy.
func (o *output) closeTaskEnds() {
	for _, f := range []*os.File{o.taskStdout, o.taskStderr} {
		if f != nil {
			_ = f.Close()
		}
	}
	o.taskStdout, o.taskStderr = nil, nil
}

func (o *output) copy() {
	for i := range o.readers {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			err := tasklog.Copy(o.writers[i], o.readers[i], func(err error) {
				fmt.Fprintf(os.Stderr, "task-shim: %v; output is dropped until writes succeed again\n", err)
			})
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				fmt.Fprintln(os.Stderr, "task-shim: reading the task's output:", err)
			}
		}()
	}
}

// drain waits for the copies to reach the end of the pipes, at most
// timeout, then closes everything.
func (o *output) drain(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		fmt.Fprintln(os.Stderr, "task-shim: the task's output is still open after its processes ended; closing the logs")
		for _, r := range o.readers {
			_ = r.SetReadDeadline(time.Now())
		}
		<-done
	}
	o.close()
}

func (o *output) close() {
	o.closeTaskEnds()
	for i := range o.readers {
		if o.readers[i] != nil {
			_ = o.readers[i].Close()
		}
		if o.writers[i] != nil {
			if err := o.writers[i].Close(); err != nil {
				fmt.Fprintln(os.Stderr, "task-shim: closing the task's log:", err)
			}
		}
	}
}

// start starts the task with its output on the given pipe ends.
func start(spec *Spec, stdout, stderr *os.File) (*exec.Cmd, error) {
	// A bare command name is looked up in the task's PATH (the job may set
	// its own), not in the agent's.
	if path, ok := envValue(spec.Env, "PATH"); ok && !strings.Contains(spec.Command, "/") {
		_ = os.Setenv("PATH", path)
	}
	cmd := exec.Command(spec.Command, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so a stop reaches the task's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.CgroupDir != "" {
		if fd, err := syscall.Open(spec.CgroupDir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err == nil {
			defer syscall.Close(fd)
			// clone3(CLONE_INTO_CGROUP): the task is limited from its first
			// instruction, before it can fork.
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = fd
		} else {
			fmt.Fprintf(os.Stderr, "task-shim: opening cgroup %s: %v; running without limits\n", spec.CgroupDir, err)
		}
	}
	if err := cmd.Start(); err != nil {
		if cmd.SysProcAttr.UseCgroupFD && !isExecError(err) {
			fmt.Fprintf(os.Stderr, "task-shim: starting in cgroup %s: %v; retrying without limits\n", spec.CgroupDir, err)
			cmd = retryWithoutCgroup(spec, stdout, stderr)
			if err2 := cmd.Start(); err2 == nil {
				return cmd, nil
			}
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			// exec: "nosuch": executable file not found in $PATH
			return nil, err
		}
		return nil, fmt.Errorf("starting %q: %w", spec.Command, err)
	}
	return cmd, nil
}

func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

func retryWithoutCgroup(spec *Spec, stdout, stderr *os.File) *exec.Cmd {
	cmd := exec.Command(spec.Command, spec.Args...)
	cmd.Dir, cmd.Env = spec.Dir, spec.Env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// isExecError reports errors about the program itself (not found, not
// executable), which a retry without the cgroup would not fix.
func isExecError(err error) bool {
	var ee *exec.Error
	return errors.As(err, &ee) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission)
}

func report(ready *os.File, r Ready) {
	if ready == nil {
		return
	}
	b, _ := json.Marshal(r)
	// The agent may be gone already; the task goes on regardless.
	_, _ = ready.Write(append(b, '\n'))
	_ = ready.Close()
}

// WriteJSONAtomic replaces path with v encoded as JSON, durably (see
// package durable): readers, and a restarted agent after a machine crash,
// see either the old file or the whole new one.
func WriteJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, 0o644)
}
