package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// compactDuration renders a duration without trailing zero units: 1h, 30m,
// 1m30s, 250ms.
func compactDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// waitText describes a policy's waits: "after 15s", "after 30s, doubling
// up to 1h".
func waitText(function string, delay, maxDelay api.Duration) string {
	if delay <= 0 {
		return "at once"
	}
	w := "after " + compactDuration(delay.D())
	switch function {
	case structs.DelayExponential:
		return w + ", doubling up to " + compactDuration(maxDelay.D())
	case structs.DelayFibonacci:
		return w + ", growing as Fibonacci up to " + compactDuration(maxDelay.D())
	}
	return w
}

// restartText describes a restart policy: "2 within 30m, after 15s".
func restartText(p api.RestartPolicy) string {
	if p.Attempts == 0 {
		return "none"
	}
	within := "in all"
	if p.Interval > 0 {
		within = "within " + compactDuration(p.Interval.D())
	}
	return fmt.Sprintf("%d %s, %s", p.Attempts, within, waitText(p.DelayFunction, p.Delay, p.MaxDelay))
}

// rescheduleText describes a reschedule policy: "unlimited, after 30s,
// doubling up to 1h".
func rescheduleText(p api.ReschedulePolicy) string {
	count := "unlimited"
	switch {
	case p.Unlimited:
	case p.Attempts == 0:
		return "none"
	default:
		count = fmt.Sprintf("%d %s", p.Attempts, plural(p.Attempts, "attempt", "attempts"))
	}
	return count + ", " + waitText(p.DelayFunction, p.Delay, p.MaxDelay)
}

// rescheduleLine describes a copy waiting for its replacement: "next
// reschedule in 8s, attempt 4".
func rescheduleLine(now time.Time, job *api.Job, r *api.PendingReschedule) string {
	when := "due now"
	if left := time.Unix(0, r.Time).Sub(now); left >= time.Second {
		when = "in " + compactDuration(left.Round(time.Second))
	}
	attempt := fmt.Sprintf("attempt %d", r.Attempt)
	if job != nil && !job.Reschedule.Unlimited && job.Reschedule.Attempts > 0 {
		attempt += fmt.Sprintf(" of %d", job.Reschedule.Attempts)
	}
	return fmt.Sprintf("%s: next reschedule %s, %s (replaces %s)", r.Name, when, attempt, shortID(r.PreviousAllocation))
}

// restartingLine describes a copy waiting to restart in place on its
// node, from the agent's last event, or "" if it is not.
func restartingLine(now time.Time, a *api.Allocation) string {
	ev := a.TaskState.Events
	if a.ClientTerminal() || a.TaskState.State != structs.TaskStatePending || len(ev) == 0 || ev[len(ev)-1].Type != "Restarting" {
		return ""
	}
	last := ev[len(ev)-1]
	return fmt.Sprintf("%s %s: %s (%s ago)", shortID(a.ID), a.Name, last.Message, age(now, last.Time))
}
