package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// progress is a deployment's state as `job run` shows it, computed from one
// JobStatus answer.
type progress struct {
	job   string
	typ   structs.JobType
	count int
	// Per copy (index 0..count-1), from the newest allocation of the
	// current job version; a copy without one is pending (unplaced).
	running, pending, complete, failed int
	unplaced                           int
	// failedForGood counts batch copies that failed with no reschedule
	// left; such a batch job cannot succeed.
	failedForGood int
	// failures describes failed copies: "web[2] on dev-1: exit code 1".
	failures []string
	done     bool
	stopped  bool
}

// computeProgress reduces a job's allocations to per-copy states.
func computeProgress(st *api.JobStatusResponse) progress {
	job := st.Job
	p := progress{job: job.Name, typ: job.Type, count: job.Count, stopped: job.Stop}
	if p.job == "" {
		p.job = job.ID
	}
	// Copies are counted per task group (one group, "", for a job
	// without groups).
	type copyKey struct {
		group string
		idx   int
	}
	counts := map[string]int{"": job.Count}
	var slots []copyKey
	if job.HasGroups() {
		counts = make(map[string]int, len(job.Groups))
		for _, g := range job.Groups {
			counts[g.Name] = g.Count
			for i := 0; i < g.Count; i++ {
				slots = append(slots, copyKey{g.Name, i})
			}
		}
	} else {
		for i := 0; i < job.Count; i++ {
			slots = append(slots, copyKey{"", i})
		}
	}
	latest := make(map[copyKey]*api.Allocation, job.Count)
	for _, a := range st.Allocations {
		n, known := counts[a.Group]
		if !known || a.JobVersion != job.Version || a.Index < 0 || a.Index >= n {
			continue
		}
		k := copyKey{a.Group, a.Index}
		if cur, ok := latest[k]; !ok || a.CreateIndex > cur.CreateIndex ||
			(a.CreateIndex == cur.CreateIndex && a.CreateTime > cur.CreateTime) {
			latest[k] = a
		}
	}
	for _, k := range slots {
		a, ok := latest[k]
		if !ok {
			p.pending++
			p.unplaced++
			continue
		}
		switch {
		case a.ClientStatus == structs.AllocClientComplete && job.Type == structs.JobTypeBatch:
			p.complete++
		case a.ClientStatus == structs.AllocClientFailed:
			p.failed++
			p.failures = append(p.failures, failureText(a))
			if job.Type == structs.JobTypeBatch && !rescheduleLeft(job.GroupView(a.Group), a) {
				p.failedForGood++
			}
		case a.ClientStatus == structs.AllocClientRunning && a.DesiredStatus == structs.AllocDesiredRun:
			p.running++
		default:
			// Placed and starting, or lost/stopped and awaiting a
			// replacement.
			p.pending++
		}
	}
	switch job.Type {
	case structs.JobTypeBatch:
		p.done = p.complete+p.failedForGood == p.count
	default:
		p.done = p.running == p.count
	}
	return p
}

func rescheduleLeft(job *api.Job, a *api.Allocation) bool {
	return job.Reschedule.Unlimited || a.RescheduleCount < job.Reschedule.Attempts
}

func failureText(a *api.Allocation) string {
	what := "exit code " + exitCode(a.TaskState)
	if !started(a.TaskState) {
		what = "did not start" // the description says why
	}
	s := fmt.Sprintf("%s on %s: %s", a.Name, orDash(nodeLabel(a)), what)
	if a.ClientDescription != "" {
		s += " (" + a.ClientDescription + ")"
	}
	return s
}

// started reports whether the task's last attempt ran at all: an agent
// records no start time for an attempt that failed to start (command not
// found), or for a task stopped before it started.
func started(ts api.TaskState) bool { return ts.StartedAt != 0 }

// exitCode is the task's exit code, or "-" when its last attempt never ran.
func exitCode(ts api.TaskState) string {
	if !started(ts) {
		return "-"
	}
	return strconv.Itoa(ts.ExitCode)
}

func nodeLabel(a *api.Allocation) string {
	if a.NodeName != "" {
		return a.NodeName
	}
	return shortID(a.NodeID)
}

// line is the one-line summary: "web: 3/5 running, 2 pending".
func (p progress) line() string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	head := fmt.Sprintf("%s: %d/%d running", p.job, p.running, p.count)
	if p.typ == structs.JobTypeBatch {
		head = fmt.Sprintf("%s: %d/%d complete", p.job, p.complete, p.count)
		add(p.running, "running")
	}
	add(p.pending, "pending")
	add(p.failed, "failed")
	if len(parts) == 0 {
		return head
	}
	return head + ", " + strings.Join(parts, ", ")
}

// progressWriter prints progress lines: redrawn in place on a terminal,
// one line per change otherwise (logs and CI).
type progressWriter struct {
	w       io.Writer
	tty     bool
	last    string
	drawn   bool // a redrawable line is on screen without a newline
	lastPF  string
	lastErr string
}

func (pw *progressWriter) update(line string) {
	if line == pw.last {
		return
	}
	pw.last = line
	if pw.tty {
		fmt.Fprintf(pw.w, "\r\033[K%s", line)
		pw.drawn = true
		return
	}
	fmt.Fprintln(pw.w, line)
}

// note prints a line that stays (a placement failure, a failed copy) above
// the progress line.
func (pw *progressWriter) note(s string) {
	if pw.tty && pw.drawn {
		fmt.Fprintf(pw.w, "\r\033[K%s\n%s", s, pw.last)
		return
	}
	fmt.Fprintln(pw.w, s)
}

// finish ends a redrawn line with a newline.
func (pw *progressWriter) finish() {
	if pw.tty && pw.drawn {
		fmt.Fprintln(pw.w)
		pw.drawn = false
	}
}

// pollPause spaces queries to a server that cannot block (tests shorten it).
var pollPause = time.Second

// followWait is the wait of each blocking query; the server answers
// earlier as soon as the job or its allocations change.
const followWait = 30 * time.Second

// follow watches a job with blocking queries until every copy of version
// (or newer) is running (service) or finished (batch), the job fails, or
// ctx ends. It returns the last status seen.
func (e *Env) follow(ctx context.Context, name string, version uint64, pw *progressWriter) (*api.JobStatusResponse, progress, error) {
	var (
		waitIndex uint64
		last      *api.JobStatusResponse
		p         progress
	)
	// pause is the wait before the next query: zero while the server
	// blocks for us, a second when it cannot (no index to wait on).
	var pause time.Duration
	for {
		if pause > 0 {
			if err := sleepCtx(ctx, pause); err != nil {
				return last, p, err
			}
		}
		st, meta, err := e.Client.JobStatus(ctx, name, &api.QueryOptions{WaitIndex: waitIndex, WaitTime: followWait})
		if err != nil {
			if ctx.Err() != nil {
				return last, p, ctx.Err()
			}
			return last, p, err
		}
		pause = 0
		switch idx := meta.LastIndex; {
		case idx == 0:
			// No index header: the server cannot block, so poll gently.
			pause = pollPause
		case idx < waitIndex:
			// The index went back (another server, restored state):
			// start over rather than wait for an index that may never come.
			waitIndex, pause = 0, pollPause
			continue
		case idx == waitIndex:
			continue // the wait elapsed without a change
		default:
			waitIndex = idx
		}
		if st.Job == nil || st.Job.Version < version {
			continue // a server that has not applied the registration yet
		}
		last = st
		p = computeProgress(st)
		pw.update(p.line())
		pf := ""
		if p.unplaced > 0 && st.PlacementFailure != nil {
			pf = placementFailureText(st.PlacementFailure)
		}
		if pf != "" && pf != pw.lastPF {
			pw.note("  placement: " + pf)
		}
		pw.lastPF = pf
		if len(p.failures) > 0 {
			msg := "  failed: " + strings.Join(p.failures, "; ")
			if msg != pw.lastErr {
				pw.note(sanitize(msg))
				pw.lastErr = msg
			}
		}
		switch {
		case p.stopped:
			return last, p, notConvergedf("job %s was stopped while deploying", name)
		case p.done && p.failedForGood > 0:
			return last, p, notConvergedf("batch job %s: %d of %d copies failed:\n  %s",
				name, p.failedForGood, p.count, strings.Join(p.failures, "\n  "))
		case p.done:
			return last, p, nil
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notConverged explains a deployment that ran out of time.
func notConverged(name string, timeout time.Duration, st *api.JobStatusResponse, p progress) error {
	if st == nil {
		return notConvergedf("job %s: no status within %s", name, timeout)
	}
	msg := fmt.Sprintf("job %s did not converge within %s: %s", name, timeout, strings.TrimPrefix(p.line(), p.job+": "))
	if p.unplaced > 0 && st.PlacementFailure != nil {
		msg += "; " + placementFailureText(st.PlacementFailure)
	}
	if len(p.failures) > 0 {
		msg += "\n  failed: " + strings.Join(p.failures, "\n  failed: ")
	}
	return notConvergedf("%s", msg)
}

// deployError is a deployment that did not succeed; it matches
// ErrNotConverged without repeating its text.
type deployError struct{ msg string }

func (e *deployError) Error() string        { return e.msg }
func (e *deployError) Is(target error) bool { return target == ErrNotConverged }

func notConvergedf(format string, args ...any) error {
	return &deployError{msg: fmt.Sprintf(format, args...)}
}

// isTimeout reports whether err is the end of the --timeout context.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}
