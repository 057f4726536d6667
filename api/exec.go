package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
)

// Interactive exec (`gantry alloc exec`): the client asks the server to
// upgrade its HTTP connection (Upgrade: gantry-exec, 101 Switching
// Protocols); the server does the same with the agent running the task and
// then relays bytes both ways. On the upgraded connection both sides send
// frames: one type byte, a 4-byte big-endian length, then the payload.
// Client to agent: stdin data, stdin closed, terminal resize. Agent to
// client: stdout, stderr, then exactly one exit (the command's exit code)
// or error frame, after which the agent closes the connection.

// ExecUpgrade is the Upgrade header's protocol name.
const ExecUpgrade = "gantry-exec"

// Frame types.
const (
	ExecFrameStdin      byte = 'i'
	ExecFrameStdinClose byte = 'c'
	ExecFrameResize     byte = 'r' // width, height: two big-endian uint16
	ExecFrameStdout     byte = 'o'
	ExecFrameStderr     byte = 'e'
	ExecFrameExit       byte = 'x' // the exit code: a big-endian int32
	ExecFrameError      byte = 'E' // a message: the exec failed
)

// MaxExecFrame bounds one frame's payload.
const MaxExecFrame = 64 << 10

// WriteExecFrame writes one frame. It is not safe for concurrent use on
// one writer.
func WriteExecFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxExecFrame {
		return fmt.Errorf("exec frame of %d bytes is over the %d limit", len(payload), MaxExecFrame)
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadExecFrame reads one frame into buf (grown as needed, up to
// MaxExecFrame) and returns its type and payload.
func ReadExecFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxExecFrame {
		return 0, nil, fmt.Errorf("exec frame of %d bytes is over the %d limit", n, MaxExecFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("exec frame: %w", io.ErrUnexpectedEOF)
	}
	return hdr[0], buf, nil
}

// ExecOptions is one `alloc exec`.
type ExecOptions struct {
	// Task names the task (optional: an allocation runs one task, named
	// after its job).
	Task string
	Cmd  []string
	TTY  bool
	// Width and Height are the terminal's size (TTY only).
	Width, Height uint16
	Stdin         io.Reader // nil: no input
	Stdout        io.Writer
	Stderr        io.Writer
	// Resize delivers terminal size changes (may be nil).
	Resize <-chan [2]uint16
}

// ExecQuery encodes the options the server and the agent read.
func ExecQuery(o ExecOptions) url.Values {
	q := url.Values{"cmd": o.Cmd}
	if o.Task != "" {
		q.Set("task", o.Task)
	}
	if o.TTY {
		q.Set("tty", "true")
		if o.Width > 0 && o.Height > 0 {
			q.Set("width", strconv.Itoa(int(o.Width)))
			q.Set("height", strconv.Itoa(int(o.Height)))
		}
	}
	return q
}

// AllocExec runs a command in an allocation's task and returns its exit
// code once it ends (or ctx ends: the connection is closed and the command
// killed).
func (c *Client) AllocExec(ctx context.Context, allocID string, o ExecOptions) (int, error) {
	if len(o.Cmd) == 0 {
		return -1, errors.New("exec: a command is required")
	}
	q := c.nsValues(nil)
	for k, v := range ExecQuery(o) {
		q[k] = v
	}
	var lastErr error
	for _, base := range c.addrs {
		u := base + "/v1/allocation/" + url.PathEscape(allocID) + "/exec?" + q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		if err != nil {
			return -1, err
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", ExecUpgrade)
		if c.token != "" {
			req.Header.Set(TokenHeader, c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			lastErr = fmt.Errorf("POST %s: %w", u, err)
			continue
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			apiErr := readAPIError(resp)
			if resp.StatusCode == http.StatusServiceUnavailable {
				lastErr = apiErr
				continue
			}
			return -1, apiErr
		}
		conn, ok := resp.Body.(io.ReadWriteCloser)
		if !ok {
			resp.Body.Close()
			return -1, errors.New("exec: the server switched protocols but gave no connection")
		}
		return RunExecSession(ctx, conn, o)
	}
	return -1, lastErr
}

// RunExecSession sends stdin and resizes on an upgraded exec connection
// (the server's or an agent's) and reads output until the exit
// or error frame. It closes conn.
func RunExecSession(ctx context.Context, conn io.ReadWriteCloser, o ExecOptions) (int, error) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return WriteExecFrame(conn, typ, p)
	}
	done := make(chan struct{})
	defer close(done)
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := o.Stdin.Read(buf)
				if n > 0 && send(ExecFrameStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = send(ExecFrameStdinClose, nil)
					return
				}
			}
		}()
	} else {
		_ = send(ExecFrameStdinClose, nil)
	}
	if o.Resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case s, ok := <-o.Resize:
					if !ok {
						return
					}
					var p [4]byte
					binary.BigEndian.PutUint16(p[0:], s[0])
					binary.BigEndian.PutUint16(p[2:], s[1])
					if send(ExecFrameResize, p[:]) != nil {
						return
					}
				}
			}
		}()
	}
	buf := make([]byte, 32<<10)
	for {
		typ, p, err := ReadExecFrame(conn, buf)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("exec: the connection ended before the command's exit code: %w", err)
		}
		switch typ {
		case ExecFrameStdout:
			if _, err := o.Stdout.Write(p); err != nil {
				return -1, err
			}
		case ExecFrameStderr:
			if _, err := o.Stderr.Write(p); err != nil {
				return -1, err
			}
		case ExecFrameExit:
			if len(p) != 4 {
				return -1, fmt.Errorf("exec: exit frame of %d bytes", len(p))
			}
			return int(int32(binary.BigEndian.Uint32(p))), nil
		case ExecFrameError:
			return -1, fmt.Errorf("exec: %s", p)
		default:
			return -1, fmt.Errorf("exec: unknown frame type %q", typ)
		}
	}
}

// AllocSignalRequest is the body of POST /v1/allocation/{id}/signal.
type AllocSignalRequest struct {
	Signal string `json:"signal"`
	Task   string `json:"task,omitempty"`
}

// AllocRestartRequest is the body of POST /v1/allocation/{id}/restart.
type AllocRestartRequest struct {
	Task string `json:"task,omitempty"`
}

// AllocStopResponse answers POST /v1/allocation/{id}/stop.
type AllocStopResponse struct {
	Index uint64 `json:"index"`
}

// AllocSignal sends a signal to an allocation's task.
func (c *Client) AllocSignal(ctx context.Context, allocID, signal, task string) error {
	_, err := c.do(ctx, "POST", "/v1/allocation/"+url.PathEscape(allocID)+"/signal", c.nsValues(nil),
		&AllocSignalRequest{Signal: signal, Task: task}, nil)
	return err
}

// AllocRestart restarts an allocation's task in place (not counted by the
// restart policy).
func (c *Client) AllocRestart(ctx context.Context, allocID, task string) error {
	_, err := c.do(ctx, "POST", "/v1/allocation/"+url.PathEscape(allocID)+"/restart", c.nsValues(nil),
		&AllocRestartRequest{Task: task}, nil)
	return err
}

// AllocStop stops an allocation; the scheduler places a replacement as
// for any copy that stopped.
func (c *Client) AllocStop(ctx context.Context, allocID string) (*AllocStopResponse, error) {
	var out AllocStopResponse
	_, err := c.do(ctx, "POST", "/v1/allocation/"+url.PathEscape(allocID)+"/stop", c.nsValues(nil), nil, &out)
	return &out, err
}
