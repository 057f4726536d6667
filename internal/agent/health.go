package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// Health checks: while a task runs, one goroutine per check of the job's
// services probes it (HTTP GET, TCP connect, or a command in the task's
// context) at the check's interval. Results pass through the check's
// thresholds into its status; the copy is healthy when every status is
// passing (a copy without checks, as soon as its task runs). A verdict or
// status change is saved in the allocation record and reported to the
// servers like any other transition, so reports follow changes, not
// probes. A check with check_restart restarts the task after that many
// failing results in a row (Kubernetes' liveness); the restart counts
// against the job's restart policy as an exit does.

// EventUnhealthy is the task event of a restart a failing check asked for.
const EventUnhealthy = "Unhealthy"

// checkNotRun is the output of a check that has not run yet.
const checkNotRun = "not checked yet"

// maxHTTPCheckBody bounds what an HTTP check reads of an answer.
const maxHTTPCheckBody = 4 << 10

// checkState applies a check's thresholds to its results.
type checkState struct {
	name    string
	check   structs.Check // with defaults
	status  string
	output  string
	since   int64 // unix ns of the last status change
	checked bool  // a result arrived since the task started
	okRun   int   // consecutive passing results
	failRun int   // consecutive non-passing results

	timer *time.Timer // the next probe; guarded by healthRunner.mu
}

// observe records one result and reports whether the status (or, for the
// first result, the output) changed: only those changes are reported.
func (s *checkState) observe(result, output string, now int64) bool {
	first := !s.checked
	s.checked = true
	if result == structs.CheckPassing {
		s.okRun++
		s.failRun = 0
		if s.status != structs.CheckPassing && s.okRun >= s.check.SuccessThreshold {
			s.status, s.output, s.since = result, output, now
			return true
		}
	} else {
		s.failRun++
		s.okRun = 0
		if s.status != result && s.failRun >= s.check.FailureThreshold {
			s.status, s.output, s.since = result, output, now
			return true
		}
	}
	if first && s.output == checkNotRun {
		// The first real output replaces the placeholder, status or not.
		s.output = output
		return true
	}
	return false
}

// wantsRestart reports whether the check's check_restart fires: Limit
// failing results in a row, none within Grace of the task's start.
func (s *checkState) wantsRestart(now, started time.Time) bool {
	r := s.check.CheckRestart
	if r == nil || s.failRun < r.Limit {
		return false
	}
	return now.Sub(started) >= r.Grace.D()
}

// healthRunner runs one task's checks while it runs. A check is a timer,
// not a goroutine: each probe runs in the goroutine its timer starts, and
// between probes a check holds no goroutine (and no stack), which on a
// node of many copies checked every few seconds is most of the time.
type healthRunner struct {
	r       *runner
	task    driver.Task
	alloc   *structs.Allocation
	started time.Time

	restart chan string     // a check_restart's reason; buffered 1
	ctx     context.Context // cancelled by stop: probes in flight end
	cancel  context.CancelFunc
	// wg counts the checks still scheduled or probing; a check leaves it
	// once, when it sees ctx cancelled, when stop takes its pending timer
	// back, or when its check_restart fired.
	wg sync.WaitGroup

	mu      sync.Mutex
	checks  []*checkState
	healthy bool
}

// startHealth begins the health of a task that just started (or was
// re-attached: then statuses carry over from the saved health, so an
// agent restart does not make healthy copies flap). It sets the first
// verdict: healthy at once without checks, every check critical until it
// runs otherwise.
func (r *runner) startHealth(task driver.Task, reattached bool) *healthRunner {
	rec := r.snapshot()
	alloc := rec.Alloc
	now := r.a.cfg.Now()
	h := &healthRunner{r: r, task: task, alloc: alloc, started: now, restart: make(chan string, 1)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	prev := map[string]structs.CheckStatus{}
	if reattached && rec.Health != nil {
		for _, c := range rec.Health.Checks {
			prev[c.Name] = c
		}
	}
	for _, svc := range alloc.Job.Services {
		for i, c := range svc.Checks {
			name := structs.CheckName(svc.Name, i, c)
			c = c.WithDefaults()
			if c.Port == "" {
				c.Port = svc.Port
			}
			s := &checkState{name: name, check: c, status: structs.CheckCritical, output: checkNotRun, since: now.UnixNano()}
			if p, ok := prev[name]; ok {
				s.status, s.output, s.since, s.checked = p.Status, p.Output, p.Time, true
			}
			h.checks = append(h.checks, s)
		}
	}
	h.publish(now.UnixNano(), true)
	r.a.health.tasks.Inc()
	for _, s := range h.checks {
		h.wg.Add(1)
		h.schedule(s, s.check.InitialDelay.D())
	}
	return h
}

// restartC is the channel a check_restart fires on (nil for a nil runner).
func (h *healthRunner) restartC() <-chan string {
	if h == nil {
		return nil
	}
	return h.restart
}

// stop ends the checks; unhealthy records the copy as unhealthy (its task
// no longer runs). Calls after the first do nothing.
func (h *healthRunner) stop(unhealthy bool) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		return
	}
	h.cancel()
	for _, s := range h.checks {
		if s.timer != nil && s.timer.Stop() {
			h.wg.Done() // its probe will not run
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
	h.r.a.health.tasks.Dec()
	h.mu.Lock()
	was := h.healthy
	h.healthy = false
	h.mu.Unlock()
	if was {
		h.r.a.health.healthy.Dec()
	}
	if !unhealthy {
		return
	}
	now := h.r.a.cfg.Now().UnixNano()
	h.r.update(func(rec *allocRecord) {
		if rec.Health == nil || rec.Health.Healthy {
			rec.Health = &structs.AllocHealth{Time: now, Checks: healthChecksOf(rec.Health)}
		}
	})
}

func healthChecksOf(h *structs.AllocHealth) []structs.CheckStatus {
	if h == nil {
		return nil
	}
	return h.Checks
}

// publish saves and reports the verdict; force reports even when it did
// not change (the first one).
func (h *healthRunner) publish(now int64, force bool) {
	h.mu.Lock()
	healthy := true
	checks := make([]structs.CheckStatus, 0, len(h.checks))
	for _, s := range h.checks {
		if s.status != structs.CheckPassing {
			healthy = false
		}
		checks = append(checks, structs.CheckStatus{Name: s.name, Status: s.status,
			Output: structs.TruncateCheckOutput(s.output), Time: s.since})
	}
	if len(checks) == 0 {
		checks = nil
	}
	changed := healthy != h.healthy
	h.healthy = healthy
	h.mu.Unlock()
	if changed {
		if healthy {
			h.r.a.health.healthy.Inc()
		} else {
			h.r.a.health.healthy.Dec()
		}
	}
	h.r.update(func(rec *allocRecord) {
		t := now
		if !changed && !force && rec.Health != nil {
			t = rec.Health.Time // the verdict's time moves only when it changes
		}
		// A new value, never changed in place: snapshots share it.
		rec.Health = &structs.AllocHealth{Healthy: healthy, Time: t, Checks: checks}
	})
}

// schedule arms s's timer to probe after wait, unless the checks were
// stopped (then s leaves h.wg). Under h.mu, so stop either finds the
// timer pending (and takes it back) or schedule finds h stopped.
func (h *healthRunner) schedule(s *checkState, wait time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		h.wg.Done()
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(wait, func() { h.fire(s) })
		return
	}
	s.timer.Reset(wait)
}

// fire probes a check once, in its timer's goroutine, applies the result
// and schedules the next probe (or asks for the restart check_restart
// wants, and stops probing).
func (h *healthRunner) fire(s *checkState) {
	if h.ctx.Err() != nil {
		h.wg.Done() // stopped while the timer fired
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, s.check.Timeout.D()) // a stop cancels a probe in flight
	result, output := h.probe(ctx, s.check)
	cancel()
	if h.ctx.Err() != nil {
		h.wg.Done()
		return
	}
	h.r.a.health.probes.WithLabelValues(s.check.Type, result).Inc()
	now := h.r.a.cfg.Now()
	h.mu.Lock()
	changed := s.observe(result, output, now.UnixNano())
	restart := s.wantsRestart(now, h.started)
	h.mu.Unlock()
	if changed {
		h.publish(now.UnixNano(), false)
	}
	if restart {
		why := fmt.Sprintf("check %q failed %d times in a row (check_restart limit %d): %s",
			s.name, s.failRun, s.check.CheckRestart.Limit, structs.TruncateCheckOutput(output))
		select {
		case h.restart <- why:
		default:
		}
		h.wg.Done()
		return
	}
	h.schedule(s, s.check.Interval.D())
}

// probe runs a check once and returns its result and output.
func (h *healthRunner) probe(ctx context.Context, c structs.Check) (string, string) {
	switch c.Type {
	case structs.CheckHTTP, structs.CheckTCP:
		addr, err := h.checkAddr(c.Port)
		if err != nil {
			return structs.CheckCritical, err.Error()
		}
		if c.Type == structs.CheckTCP {
			return probeTCP(ctx, addr)
		}
		return probeHTTP(ctx, h.r.a.health.client, "http://"+addr+c.Path)
	case structs.CheckScript:
		return probeScript(ctx, h.task, append([]string{c.Command}, c.Args...))
	}
	return structs.CheckCritical, fmt.Sprintf("unknown check type %q", c.Type)
}

// checkAddr is where the agent reaches a port of the copy: the host port
// on the address tasks are told (GANTRY_IP_<LABEL>), as other hosts
// reach it, so a passing check means the copy is reachable.
func (h *healthRunner) checkAddr(label string) (string, error) {
	for _, p := range h.alloc.Ports {
		if strings.EqualFold(p.Label, label) {
			return net.JoinHostPort(h.r.a.portIP(), strconv.Itoa(p.Value)), nil
		}
	}
	return "", fmt.Errorf("the allocation has no port %q", label)
}

func probeTCP(ctx context.Context, addr string) (string, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return structs.CheckCritical, err.Error()
	}
	_ = conn.Close()
	return structs.CheckPassing, "TCP connect " + addr + ": Success"
}

// probeHTTP GETs url: 2xx passes, 429 warns (Nomad's rule), anything else
// fails. The output is the status line and the start of the body.
func probeHTTP(ctx context.Context, client *http.Client, url string) (string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return structs.CheckCritical, err.Error()
	}
	req.Header.Set("User-Agent", "gantry-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return structs.CheckCritical, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxHTTPCheckBody))
	out := fmt.Sprintf("HTTP GET %s: %s", url, resp.Status)
	if b := strings.TrimSpace(string(body)); b != "" {
		out += ": " + b
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return structs.CheckPassing, out
	case resp.StatusCode == http.StatusTooManyRequests:
		return structs.CheckWarning, out
	}
	return structs.CheckCritical, out
}

// probeScript runs a command in the task's context (docker exec inside
// the container, a process beside an exec task): exit 0 passes, 1 warns,
// anything else fails.
func probeScript(ctx context.Context, task driver.Task, cmd []string) (string, string) {
	ex, ok := task.(driver.Execer)
	if !ok {
		return structs.CheckCritical, "this task's driver cannot run commands in it (script checks need exec or docker)"
	}
	var out boundedBuffer
	code, err := ex.Exec(ctx, driver.ExecRequest{Cmd: cmd, Stdout: &out, Stderr: &out})
	text := strings.TrimSpace(out.String())
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return structs.CheckCritical, "timed out: " + text
		}
		return structs.CheckCritical, err.Error()
	}
	switch code {
	case 0:
		return structs.CheckPassing, text
	case 1:
		return structs.CheckWarning, text
	}
	return structs.CheckCritical, fmt.Sprintf("exit code %d: %s", code, text)
}

// boundedBuffer keeps the first MaxCheckOutput bytes written and drops
// the rest, so a chatty check cannot grow the agent.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := structs.MaxCheckOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// restartUnhealthy stops a task a failing check asked to restart and
// returns its exit, which the restart policy then judges as any other.
func (r *runner) restartUnhealthy(task driver.Task, why string) driver.ExitResult {
	r.a.log.Info("restarting an unhealthy task", "alloc", r.id, "why", why)
	r.update(func(rec *allocRecord) { r.event(rec, EventUnhealthy, why) })
	if err := task.Stop(r.a.cfg.KillTimeout); err != nil {
		r.a.log.Error("stopping an unhealthy task", "alloc", r.id, "err", err)
	}
	res := task.Result()
	res.Err = nil // it was stopped on purpose: an exit to restart, not a lost task
	return res
}
