package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// Operations on a running allocation's task, asked by the servers for
// `gantry alloc exec|restart|signal` (the servers check the caller's ACL
// token; with TLS on the agent serves them to servers only).

// EventRestartSignaled is the event of a restart someone asked for.
const EventRestartSignaled = "Restart Signaled"

// MaxExecSessions bounds the exec sessions one agent serves at once.
const MaxExecSessions = 64

func (r *runner) setCurrent(t driver.Task) {
	r.mu.Lock()
	r.cur = t
	r.mu.Unlock()
}

func (r *runner) current() driver.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// restartInPlace stops the task for a restart asked for; the run loop
// starts it again at once, without counting it against the restart policy
// (as Nomad's alloc restart).
func (r *runner) restartInPlace(task driver.Task) error {
	err := task.Stop(r.a.cfg.KillTimeout)
	res := task.Result()
	r.setCounted(false)
	r.update(func(rec *allocRecord) {
		rec.Handle = nil
		rec.Phase = phaseRestartWait
		rec.TaskState.ExitCode = res.ExitCode
		rec.TaskState.State = structs.TaskStatePending
		rec.ClientStatus = structs.AllocClientPending
		r.event(rec, EventRestartSignaled, "restart asked for by a user; "+res.String())
	})
	return err
}

// restart asks the run goroutine for a restart and waits for the stop.
func (r *runner) restart(ctx context.Context) error {
	return askRestart(ctx, r.restartCh, r.done)
}

// askRestart sends a restart request to a task's goroutine, which answers
// once the task has stopped; done closes when that goroutine has ended.
func askRestart(ctx context.Context, requests chan<- chan error, done <-chan struct{}) error {
	reply := make(chan error, 1)
	select {
	case requests <- reply:
	case <-done:
		return driver.ErrTaskNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// taskFor finds the allocation's runner and, when the query names an
// extra task, that task's goroutine (nil for the main task). An extra
// task that is not running has no current task; callers say so.
func (a *Agent) taskFor(w http.ResponseWriter, r *http.Request) (*runner, *sideTask) {
	id := r.PathValue("alloc_id")
	a.mu.Lock()
	run := a.runners[id]
	a.mu.Unlock()
	if run == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("allocation %s is not running on this node", id))
		return nil, nil
	}
	task := r.URL.Query().Get("task")
	job := run.snapshot().Alloc.Job
	if task == "" || job == nil || task == job.MainTask() {
		return run, nil
	}
	if !job.HasTask(task) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("allocation %s has no task %q (its tasks: %s)", id, task, strings.Join(taskNames(job), ", ")))
		return nil, nil
	}
	if s := run.side(task); s != nil {
		return run, s
	}
	writeError(w, http.StatusConflict, fmt.Sprintf("allocation %s: task %s: %v (not started yet)", id, task, driver.ErrTaskNotRunning))
	return nil, nil
}

// taskNames lists a job's tasks, the main one (named after the job, or
// after the group in a group's view) first.
func taskNames(j *structs.Job) []string {
	out := []string{j.MainTask()}
	for i := range j.Tasks {
		out = append(out, j.Tasks[i].Name)
	}
	return out
}

// currentOf is the running task an operation acts on.
func currentOf(run *runner, side *sideTask) driver.Task {
	if side != nil {
		return side.current()
	}
	return run.current()
}

func (a *Agent) handleRestart(w http.ResponseWriter, r *http.Request) {
	run, side := a.taskFor(w, r)
	if run == nil {
		return
	}
	if currentOf(run, side) == nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("allocation %s: %v (starting, waiting to restart, or done)", run.id, driver.ErrTaskNotRunning))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.KillTimeout+30*time.Second)
	defer cancel()
	restart := run.restart
	if side != nil {
		restart = side.restart
	}
	if err := restart(ctx); err != nil {
		writeError(w, taskErrCode(err), fmt.Sprintf("allocation %s: restart: %v", run.id, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
}

func (a *Agent) handleSignal(w http.ResponseWriter, r *http.Request) {
	run, side := a.taskFor(w, r)
	if run == nil {
		return
	}
	sig, err := driver.ParseSignal(r.URL.Query().Get("signal"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	t := currentOf(run, side)
	s, ok := t.(driver.Signaler)
	switch {
	case t == nil:
		writeError(w, http.StatusConflict, fmt.Sprintf("allocation %s: %v", run.id, driver.ErrTaskNotRunning))
		return
	case !ok:
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("allocation %s: driver %s cannot signal its tasks", run.id, t.Handle().Driver))
		return
	}
	if err := s.Signal(sig); err != nil {
		writeError(w, taskErrCode(err), err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
}

func taskErrCode(err error) int {
	if errors.Is(err, driver.ErrTaskNotRunning) {
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// execRequest reads an exec's query: the command, tty and size.
func execRequest(r *http.Request) (driver.ExecRequest, error) {
	q := r.URL.Query()
	req := driver.ExecRequest{Cmd: q["cmd"]}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return req, errors.New("cmd: a command is required (cmd=prog&cmd=arg...)")
	}
	if v := q.Get("tty"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, fmt.Errorf("tty: must be true or false (got %q)", v)
		}
		req.TTY = b
	}
	for _, f := range []struct {
		name string
		to   *uint16
	}{{"width", &req.Size.Width}, {"height", &req.Size.Height}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return req, fmt.Errorf("%s: must be a number of characters, 0-65535 (got %q)", f.name, v)
			}
			*f.to = uint16(n)
		}
	}
	return req, nil
}

// handleExec upgrades the connection and runs one command in the task.
func (a *Agent) handleExec(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != api.ExecUpgrade {
		writeError(w, http.StatusBadRequest, "exec needs a connection upgrade (Connection: Upgrade, Upgrade: "+api.ExecUpgrade+")")
		return
	}
	run, side := a.taskFor(w, r)
	if run == nil {
		return
	}
	req, err := execRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	t := currentOf(run, side)
	ex, ok := t.(driver.Execer)
	switch {
	case t == nil:
		writeError(w, http.StatusConflict, fmt.Sprintf("allocation %s: %v", run.id, driver.ErrTaskNotRunning))
		return
	case !ok:
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("allocation %s: driver %s does not support exec", run.id, t.Handle().Driver))
		return
	}
	if n := a.execSessions.Add(1); n > MaxExecSessions {
		a.execSessions.Add(-1)
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("this agent already serves %d exec sessions", MaxExecSessions))
		return
	}
	defer a.execSessions.Add(-1)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "exec: "+err.Error())
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.ExecUpgrade+"\r\n\r\n"); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newExecStream(conn)
	// Frames from the client: stdin, its end, resizes. The connection
	// closing (the user went away) cancels the command.
	stdinR, stdinW := io.Pipe()
	resize := make(chan driver.TermSize, 4)
	go func() {
		defer cancel()
		defer func() { _ = stdinW.Close() }()
		buf := make([]byte, 32<<10)
		for {
			typ, p, err := api.ReadExecFrame(brw, buf)
			if err != nil {
				_ = stdinW.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			switch typ {
			case api.ExecFrameStdin:
				if _, err := stdinW.Write(p); err != nil {
					continue // the command no longer reads its input
				}
			case api.ExecFrameStdinClose:
				_ = stdinW.Close()
			case api.ExecFrameResize:
				if len(p) == 4 {
					select {
					case resize <- driver.TermSize{Width: binary.BigEndian.Uint16(p), Height: binary.BigEndian.Uint16(p[2:])}:
					default: // a burst of resizes: the last ones matter less than not blocking
					}
				}
			}
		}
	}()
	req.Stdin, req.Stdout, req.Stderr = stdinR, s.writer(api.ExecFrameStdout), s.writer(api.ExecFrameStderr)
	req.Resize = resize
	a.log.Info("alloc exec", "alloc", run.id, "cmd", req.Cmd, "tty", req.TTY)
	code, err := ex.Exec(ctx, req)
	if err != nil {
		_ = s.send(api.ExecFrameError, []byte(err.Error()))
		return
	}
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(int32(code)))
	_ = s.send(api.ExecFrameExit, p[:])
}

// execStream writes frames to one connection from several goroutines.
type execStream struct {
	mu sync.Mutex
	w  io.Writer
}

func newExecStream(w io.Writer) *execStream { return &execStream{w: w} }

func (s *execStream) send(typ byte, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return api.WriteExecFrame(s.w, typ, p)
}

// writer returns an io.Writer sending its bytes as frames of typ.
func (s *execStream) writer(typ byte) io.Writer { return frameWriter{s, typ} }

type frameWriter struct {
	s   *execStream
	typ byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += api.MaxExecFrame {
		if err := f.s.send(f.typ, p[off:min(len(p), off+api.MaxExecFrame)]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}
