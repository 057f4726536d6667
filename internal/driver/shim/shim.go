// Package shim is the small supervisor that runs one exec task so the task
// outlives the agent that started it.
//
// The agent re-executes its own binary as "gantry task-shim" in a new
// session. The shim starts the task in its own process group (inside the
// allocation's cgroup when there is one), records the task's PID and later
// its exit code in files of the allocation directory (write then rename, so a
// reader never sees half a file), forwards SIGTERM/SIGINT to the task's
// process group, and exits once the task has ended. An agent restarted on
// the same data dir re-attaches by the shim's PID and reads the exit code
// from the file; nothing here depends on the agent staying alive.
package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/driver/cgroups"
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
)

// Spec is what the shim runs; the driver writes it as JSON.
type Spec struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	Dir     string   `json:"dir,omitempty"`
	Env     []string `json:"env"`
	Stdout  string   `json:"stdout"`
	Stderr  string   `json:"stderr"`
	// PIDFile and ExitFile receive a PIDRecord and an ExitRecord.
	PIDFile  string `json:"pid_file"`
	ExitFile string `json:"exit_file"`
	// CgroupDir, when set, is the cgroup the task starts in; the shim
	// removes it after the task ends.
	CgroupDir string `json:"cgroup_dir,omitempty"`
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
	var ready *os.File
	if fd, err := strconv.Atoi(os.Getenv(EnvReadyFD)); err == nil && fd > 2 {
		// Inherited without close-on-exec: keep it out of the task.
		syscall.CloseOnExec(fd)
		ready = os.NewFile(uintptr(fd), "ready")
	}
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
	if err := Run(spec, ready); err != nil {
		fmt.Fprintln(os.Stderr, "task-shim:", err)
		return 1
	}
	return 0
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
// Ready line once the task started or failed to.
func Run(spec *Spec, ready *os.File) error {
	// Forward termination requests; hang-ups from the agent's terminal or
	// session going away must not end the task.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	cmd, err := start(spec)
	if err != nil {
		rec := ExitRecord{ExitCode: 127, Error: err.Error(), FinishedAt: time.Now().UnixNano()}
		_ = WriteJSONAtomic(spec.ExitFile, rec)
		_ = cgroups.Remove(spec.CgroupDir)
		report(ready, Ready{Error: err.Error()})
		return err
	}
	pid := cmd.Process.Pid
	rec := PIDRecord{ShimPID: os.Getpid(), TaskPID: pid}
	rec.ShimStart, _ = StartTime(rec.ShimPID)
	rec.TaskStart, _ = StartTime(pid)
	if err := WriteJSONAtomic(spec.PIDFile, rec); err != nil {
		// Without the PID file a restarted agent still finds the shim by
		// the PID in its handle; go on.
		fmt.Fprintln(os.Stderr, "task-shim: writing pid file:", err)
	}
	report(ready, Ready{TaskPID: pid})

	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				// The whole group: children of the task end with it.
				_ = syscall.Kill(-pid, syscall.SIGTERM)
			case <-done:
				return
			}
		}
	}()
	_ = cmd.Wait()
	close(done)
	exit := ExitRecord{FinishedAt: time.Now().UnixNano()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Signal = int(ws.Signal())
		exit.ExitCode = 128 + exit.Signal
	} else {
		exit.ExitCode = cmd.ProcessState.ExitCode()
	}
	// Background children left in the task's group end with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if err := cgroups.Remove(spec.CgroupDir); err != nil {
		fmt.Fprintln(os.Stderr, "task-shim:", err)
	}
	if err := WriteJSONAtomic(spec.ExitFile, exit); err != nil {
		return fmt.Errorf("writing exit file: %w", err)
	}
	return nil
}

func start(spec *Spec) (*exec.Cmd, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	stdout, err := os.OpenFile(spec.Stdout, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening stdout log: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(spec.Stderr, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening stderr log: %w", err)
	}
	defer stderr.Close()

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
		return nil, fmt.Errorf("starting %q: %w", spec.Command, err)
	}
	return cmd, nil
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

// ProcInfo is what /proc/<pid>/stat says about a process.
type ProcInfo struct {
	State     byte   // R, S, D, Z (zombie), X (dead) ...
	StartTime uint64 // clock ticks after boot
}

// ErrNoProcess means the PID does not exist.
var ErrNoProcess = errors.New("no such process")

// ReadProc parses /proc/<pid>/stat.
func ReadProc(pid int) (ProcInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return ProcInfo{}, ErrNoProcess
		}
		return ProcInfo{}, err
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// or ')'; the fields after the last ')' are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22, f[19].
	if len(f) < 20 {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return ProcInfo{State: f[0][0], StartTime: st}, nil
}

// StartTime returns a process's start time in clock ticks after boot.
func StartTime(pid int) (uint64, error) {
	p, err := ReadProc(pid)
	return p.StartTime, err
}

// Alive reports whether pid is the process that started at start and has
// not exited (a zombie has exited).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	p, err := ReadProc(pid)
	if err != nil {
		return false
	}
	return p.StartTime == start && p.State != 'Z' && p.State != 'X'
}
