package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
)

// Interactive access to a running task (`gantry alloc exec`, `alloc
// signal`). They are optional interfaces of a Task, so drivers that cannot
// (mock) need not pretend; the agent answers "not supported" for them.

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width, Height uint16
}

// ExecRequest is one command run in a running task's environment.
type ExecRequest struct {
	// Cmd is the program and its arguments; required.
	Cmd []string
	// TTY runs the command on a terminal: its output (stdout and stderr
	// alike) goes to Stdout, and Resize changes the terminal's size.
	TTY bool
	// Size is the terminal's initial size (TTY only; zero = the default).
	Size TermSize
	// Stdin is the command's input (nil = none); its EOF closes it.
	Stdin io.Reader
	// Stdout and Stderr receive the output; required.
	Stdout, Stderr io.Writer
	// Resize delivers terminal size changes (TTY only; may be nil).
	Resize <-chan TermSize
}

// Execer is implemented by tasks that can run a command beside the task,
// in its environment: the exec driver's in the task's directory with the
// task's variables, docker's inside the container.
type Execer interface {
	// Exec runs req until the command exits or ctx ends (the command is
	// then killed) and returns its exit code.
	Exec(ctx context.Context, req ExecRequest) (int, error)
}

// Signaler is implemented by tasks that can be sent a signal.
type Signaler interface {
	Signal(sig syscall.Signal) error
}

// ErrTaskNotRunning is returned by Exec and Signal on a task that has ended.
var ErrTaskNotRunning = errors.New("task is not running")

// Validate checks an ExecRequest's required fields.
func (r *ExecRequest) Validate() error {
	switch {
	case len(r.Cmd) == 0 || r.Cmd[0] == "":
		return errors.New("exec: a command is required")
	case r.Stdout == nil || r.Stderr == nil:
		return errors.New("exec: stdout and stderr are required")
	}
	return nil
}

// signalNames are the signals `alloc signal` and `kill_signal` accept by
// name, with or without the SIG prefix.
var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "ALRM": syscall.SIGALRM,
	"CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP, "WINCH": syscall.SIGWINCH,
}

// ParseSignal reads a signal as a name ("SIGHUP", "hup") or a number (1-31).
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= 31 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("unknown signal %q (a name such as SIGHUP, SIGUSR1, SIGTERM, or a number 1-31)", s)
}
