package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/gantry-project/gantry/internal/driver/shim"
)

var (
	_ Execer   = (*execTask)(nil)
	_ Signaler = (*execTask)(nil)
)

// running reports whether the task's process is still there.
func (t *execTask) running() bool {
	select {
	case <-t.exited:
		return false
	default:
	}
	return shim.Alive(t.st.TaskPID, t.st.TaskStart)
}

// Signal implements Signaler: the signal goes to the task's process group
// (the shim does not forward it: it is not a stop).
func (t *execTask) Signal(sig syscall.Signal) error {
	if !t.running() {
		return fmt.Errorf("alloc %s: %w", t.h.AllocID, ErrTaskNotRunning)
	}
	if err := syscall.Kill(-t.st.TaskPID, sig); err != nil {
		return fmt.Errorf("alloc %s: signal %s: %w", t.h.AllocID, sig, err)
	}
	return nil
}

// Exec implements Execer: the command runs as the agent's user in the
// task's working directory with the task's environment (the exec driver
// isolates no more than that: as Nomad's raw_exec), in a process group of
// its own that is killed when ctx ends.
func (t *execTask) Exec(ctx context.Context, req ExecRequest) (int, error) {
	if err := req.Validate(); err != nil {
		return -1, err
	}
	if !t.running() || t.cfg == nil {
		return -1, fmt.Errorf("alloc %s: %w", t.h.AllocID, ErrTaskNotRunning)
	}
	dir := t.cfg.AllocDir
	if c, errs := parseExec(t.cfg.Config); len(errs) == 0 && c.Dir != "" {
		dir = c.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(t.cfg.AllocDir, dir)
		}
	}
	cmd := exec.Command(req.Cmd[0], req.Cmd[1:]...)
	cmd.Dir, cmd.Env = dir, taskEnv(t.cfg)
	if req.TTY {
		return runTTY(ctx, cmd, req)
	}
	cmd.Stdout, cmd.Stderr = req.Stdout, req.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdin io.WriteCloser
	if req.Stdin != nil {
		w, err := cmd.StdinPipe()
		if err != nil {
			return -1, err
		}
		stdin = w
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec: starting %q: %w", req.Cmd[0], err)
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, req.Stdin)
			_ = stdin.Close()
		}()
	}
	return waitCmd(ctx, cmd)
}

// waitCmd waits for cmd, killing its process group if ctx ends first.
func waitCmd(ctx context.Context, cmd *exec.Cmd) (int, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			return -1, fmt.Errorf("exec: command did not exit after SIGKILL")
		}
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return -1, err
}

// runTTY runs cmd on a new pseudo-terminal.
func runTTY(ctx context.Context, cmd *exec.Cmd, req ExecRequest) (int, error) {
	var size *pty.Winsize
	if req.Size.Width > 0 && req.Size.Height > 0 {
		size = &pty.Winsize{Cols: req.Size.Width, Rows: req.Size.Height}
	}
	f, err := pty.StartWithSize(cmd, size) // Setsid: the command leads its session
	if err != nil {
		return -1, fmt.Errorf("exec: starting %q on a terminal: %w", req.Cmd[0], err)
	}
	stop := make(chan struct{})
	defer close(stop)
	if req.Stdin != nil {
		go func() { _, _ = io.Copy(f, req.Stdin) }()
	}
	if req.Resize != nil {
		go func() {
			for {
				select {
				case s, ok := <-req.Resize:
					if !ok {
						return
					}
					_ = pty.Setsize(f, &pty.Winsize{Cols: s.Width, Rows: s.Height})
				case <-stop:
					return
				}
			}
		}()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(req.Stdout, f) // ends with EIO once the command and its children close the terminal
	}()
	code, err := waitCmd(ctx, cmd)
	select {
	case <-copied:
	case <-time.After(time.Second): // a background child holds the terminal
	}
	_ = f.Close()
	<-copied
	return code, err
}
