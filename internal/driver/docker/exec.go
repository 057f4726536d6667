package docker

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
)

var (
	_ driver.Execer   = (*task)(nil)
	_ driver.Signaler = (*task)(nil)
)

func (t *task) ended() bool {
	select {
	case <-t.exited:
		return true
	default:
		return false
	}
}

// Signal implements driver.Signaler through the daemon (docker kill -s).
func (t *task) Signal(sig syscall.Signal) error {
	if t.ended() {
		return fmt.Errorf("alloc %s: %w", t.h.AllocID, driver.ErrTaskNotRunning)
	}
	ctx, cancel := t.d.callCtx()
	defer cancel()
	if _, err := t.d.cli.ContainerKill(ctx, t.st.ContainerID, client.ContainerKillOptions{Signal: fmt.Sprint(int(sig))}); err != nil {
		return fmt.Errorf("sending signal %d to container %s: %w", int(sig), short(t.st.ContainerID), err)
	}
	return nil
}

// Exec implements driver.Execer: docker exec in the task's container,
// with the container's environment and the job's (the daemon merges the
// container's own), attached to the request's streams.
func (t *task) Exec(ctx context.Context, req driver.ExecRequest) (int, error) {
	if err := req.Validate(); err != nil {
		return -1, err
	}
	if t.ended() {
		return -1, fmt.Errorf("alloc %s: %w", t.h.AllocID, driver.ErrTaskNotRunning)
	}
	size := client.ConsoleSize{Height: uint(req.Size.Height), Width: uint(req.Size.Width)}
	if !req.TTY || size.Height == 0 || size.Width == 0 {
		size = client.ConsoleSize{}
	}
	created, err := t.d.cli.ExecCreate(ctx, t.st.ContainerID, client.ExecCreateOptions{
		Cmd: req.Cmd, TTY: req.TTY, ConsoleSize: size,
		AttachStdin: req.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", short(t.st.ContainerID), err)
	}
	att, err := t.d.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: req.TTY, ConsoleSize: size})
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: attaching: %w", short(t.st.ContainerID), err)
	}
	defer att.Close()
	// The hijacked connection outlives no context: closing it ends the
	// copies below when ctx ends.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	if req.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, req.Stdin)
			_ = att.CloseWrite()
		}()
	}
	if req.TTY && req.Resize != nil {
		go t.resizeExec(ctx, created.ID, req.Resize)
	}
	if req.TTY {
		_, err = io.Copy(req.Stdout, att.Reader)
	} else {
		_, err = stdcopy.StdCopy(req.Stdout, req.Stderr, att.Reader)
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: reading output: %w", short(t.st.ContainerID), err)
	}
	// The output ends when the command does; the daemon may take a moment
	// more to record its exit code.
	for range 50 {
		ictx, cancel := t.d.callCtx()
		insp, err := t.d.cli.ExecInspect(ictx, created.ID, client.ExecInspectOptions{})
		cancel()
		if err != nil {
			return -1, fmt.Errorf("exec in container %s: reading the exit code: %w", short(t.st.ContainerID), err)
		}
		if !insp.Running {
			return insp.ExitCode, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1, fmt.Errorf("exec in container %s: the command's output ended but it still runs", short(t.st.ContainerID))
}

func (t *task) resizeExec(ctx context.Context, execID string, sizes <-chan driver.TermSize) {
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-sizes:
			if !ok {
				return
			}
			rctx, cancel := t.d.callCtx()
			_, _ = t.d.cli.ExecResize(rctx, execID, client.ExecResizeOptions{Height: uint(s.Height), Width: uint(s.Width)})
			cancel()
		}
	}
}
