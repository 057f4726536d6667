package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/gantry-project/gantry/api"
)

// ExecOptions are the flags of `alloc exec`.
type ExecOptions struct {
	Task string
	// TTY asks for a terminal: "auto" (when stdin and stdout are
	// terminals), "true" or "false".
	TTY string
	// Stdin forwards this process's input (default true; -i=false sends
	// none, for commands that must not wait for input).
	Stdin bool
}

// ExitError carries a remote command's exit code out of `alloc exec`, so
// gantry exits with it.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("command exited with code %d", e.Code) }

// AllocExec runs cmd in an allocation's task, attached to this process's
// standard streams, and returns an *ExitError for a non-zero exit.
func (e *Env) AllocExec(ctx context.Context, ref string, cmd []string, o ExecOptions, in io.Reader) error {
	a, _, err := e.Client.Allocation(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", ref, e.Humanize(err))
	}
	inFile, inIsFile := in.(*os.File)
	outFile, outIsFile := e.Out.(*os.File)
	tty := false
	switch o.TTY {
	case "true":
		tty = true
	case "false":
	case "", "auto":
		tty = inIsFile && outIsFile && term.IsTerminal(int(inFile.Fd())) && term.IsTerminal(int(outFile.Fd()))
	default:
		return fmt.Errorf("--tty: must be auto, true or false (got %q)", o.TTY)
	}
	opts := api.ExecOptions{Task: o.Task, Cmd: cmd, TTY: tty, Stdout: e.Out, Stderr: e.Err}
	if o.Stdin {
		opts.Stdin = in
	}
	if tty && inIsFile && term.IsTerminal(int(inFile.Fd())) {
		// Raw mode: keys (Ctrl-C included) go to the remote command.
		state, err := term.MakeRaw(int(inFile.Fd()))
		if err != nil {
			return fmt.Errorf("terminal raw mode: %w", err)
		}
		defer func() { _ = term.Restore(int(inFile.Fd()), state) }()
		if outIsFile {
			if w, h, err := term.GetSize(int(outFile.Fd())); err == nil {
				opts.Width, opts.Height = uint16(w), uint16(h)
			}
			resize := make(chan [2]uint16, 1)
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, syscall.SIGWINCH)
			defer signal.Stop(winch)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-winch:
						if w, h, err := term.GetSize(int(outFile.Fd())); err == nil {
							select {
							case resize <- [2]uint16{uint16(w), uint16(h)}:
							default:
							}
						}
					}
				}
			}()
			opts.Resize = resize
		}
	}
	code, err := e.Client.AllocExec(ctx, a.ID, opts)
	if err != nil {
		return fmt.Errorf("exec in allocation %s: %w", shortID(a.ID), e.Humanize(err))
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// AllocRestart restarts an allocation's task in place.
func (e *Env) AllocRestart(ctx context.Context, ref, task string) error {
	a, _, err := e.Client.Allocation(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", ref, e.Humanize(err))
	}
	if err := e.Client.AllocRestart(ctx, a.ID, task); err != nil {
		return fmt.Errorf("restart of allocation %s: %w", shortID(a.ID), e.Humanize(err))
	}
	fmt.Fprintf(e.Out, "Allocation %s (%s) restarted\n", shortID(a.ID), a.Name)
	return nil
}

// AllocSignal sends a signal to an allocation's task.
func (e *Env) AllocSignal(ctx context.Context, ref, sig, task string) error {
	a, _, err := e.Client.Allocation(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", ref, e.Humanize(err))
	}
	if err := e.Client.AllocSignal(ctx, a.ID, sig, task); err != nil {
		return fmt.Errorf("signal to allocation %s: %w", shortID(a.ID), e.Humanize(err))
	}
	fmt.Fprintf(e.Out, "Sent %s to allocation %s (%s)\n", sig, shortID(a.ID), a.Name)
	return nil
}

// AllocStop stops an allocation; the scheduler replaces it.
func (e *Env) AllocStop(ctx context.Context, ref string) error {
	a, _, err := e.Client.Allocation(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", ref, e.Humanize(err))
	}
	if _, err := e.Client.AllocStop(ctx, a.ID); err != nil {
		return fmt.Errorf("stop of allocation %s: %w", shortID(a.ID), e.Humanize(err))
	}
	fmt.Fprintf(e.Out, "Allocation %s (%s) stopped; the scheduler places a replacement\n", shortID(a.ID), a.Name)
	return nil
}
