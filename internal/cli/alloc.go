package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/gantry-project/gantry/api"
)

// AllocStatus prints one allocation (by ID or unique prefix): placement,
// task state and the task's recent events.
func (e *Env) AllocStatus(ctx context.Context, ref string) error {
	a, _, err := e.Client.Allocation(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", ref, e.Humanize(err))
	}
	a = a.Stub()
	if ok, err := e.printData(a); ok {
		return err
	}
	now := e.Now()
	k := &kv{}
	k.add("ID", a.ID)
	k.add("Name", a.Name)
	k.add("Job", fmt.Sprintf("%s (version %d)", a.JobID, a.JobVersion))
	if a.Group != "" {
		k.add("Group", a.Group)
	}
	k.add("Node", fmt.Sprintf("%s (%s)", orDash(a.NodeName), orDash(a.NodeID)))
	k.add("Resources", cpuMem(a.Resources))
	k.add("Priority", a.Priority)
	desired := a.DesiredStatus
	if a.DesiredDescription != "" {
		desired += " (" + a.DesiredDescription + ")"
	}
	k.add("Desired", desired)
	client := a.ClientStatus
	if a.ClientDescription != "" {
		client += " (" + a.ClientDescription + ")"
	}
	k.add("Status", client)
	if a.Health != nil {
		k.add("Health", fmt.Sprintf("%s (since %s)", HealthText(a.Health), timestamp(now, a.Health.Time)))
	}
	if a.PreviousAllocation != "" {
		k.add("Replaces", fmt.Sprintf("%s (reschedule %d)", shortID(a.PreviousAllocation), a.RescheduleCount))
	}
	if a.PreemptedBy != "" {
		k.add("Preempted by", shortID(a.PreemptedBy))
	}
	k.add("Created", timestamp(now, a.CreateTime))
	k.add("Modified", timestamp(now, a.ModifyTime))
	if err := k.write(e.Out); err != nil {
		return err
	}

	title := "Task"
	if len(a.TaskStates) > 0 {
		title = "Task (main)"
	}
	if err := e.writeTask(now, title, a.TaskState); err != nil {
		return err
	}
	if a.Health != nil && len(a.Health.Checks) > 0 {
		fmt.Fprintln(e.Out, "\nChecks")
		ct := newTable("NAME", "STATUS", "SINCE", "OUTPUT")
		for _, c := range a.Health.Checks {
			ct.row(c.Name, c.Status, timestamp(now, c.Time), orDash(sanitize(c.Output)))
		}
		if err := ct.write(e.Out); err != nil {
			return err
		}
	}
	// Extra tasks (task groups), by name.
	names := make([]string, 0, len(a.TaskStates))
	for n := range a.TaskStates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := e.writeTask(now, "Task "+sanitize(n), a.TaskStates[n]); err != nil {
			return err
		}
	}
	return nil
}

// writeTask prints one task's state and recent events under a title.
func (e *Env) writeTask(now time.Time, title string, ts api.TaskState) error {
	fmt.Fprintln(e.Out, "\n"+title)
	tk := &kv{}
	tk.add("State", orDash(ts.State))
	tk.add("Restarts", ts.Restarts)
	if ts.PID != 0 {
		tk.add("PID", ts.PID)
	}
	tk.add("Started", timestamp(now, ts.StartedAt))
	if ts.FinishedAt != 0 {
		tk.add("Finished", timestamp(now, ts.FinishedAt))
		tk.add("Exit code", exitCode(ts))
		tk.add("Failed", ts.Failed)
	}
	if err := tk.write(e.Out); err != nil {
		return err
	}

	fmt.Fprintln(e.Out, "\nRecent events")
	if len(ts.Events) == 0 {
		fmt.Fprintln(e.Out, "No events")
		return nil
	}
	t := newTable("TIME", "TYPE", "MESSAGE")
	for _, ev := range ts.Events {
		t.row(time.Unix(0, ev.Time).In(now.Location()).Format(time.RFC3339), ev.Type, orDash(ev.Message))
	}
	return t.write(e.Out)
}

// LogOptions are the flags of `alloc logs`.
type LogOptions struct {
	Stderr bool
	Follow bool
	// Task names the task ("" = the main one, named after the job).
	Task string
}

// AllocLogs copies a task's stdout (or stderr) to Out; with Follow it keeps
// streaming until ctx ends (Ctrl-C) or the server closes the stream.
func (e *Env) AllocLogs(ctx context.Context, ref string, o LogOptions) error {
	// Resolve a prefix first: the log endpoint proxies to the node, and a
	// clear "not found" beats a proxy error.
	a, _, err := e.Client.Allocation(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", ref, e.Humanize(err))
	}
	stream := "stdout"
	if o.Stderr {
		stream = "stderr"
	}
	body, err := e.Client.AllocLogs(ctx, a.ID, api.LogOptions{Stream: stream, Follow: o.Follow, Task: o.Task})
	if err == nil {
		_, err = io.Copy(e.Out, body)
		body.Close()
	}
	if err != nil && o.Follow && ctx.Err() != nil {
		return nil //nolint:nilerr // Ctrl-C is how a follow ends: that is success
	}
	if err != nil {
		return fmt.Errorf("logs of allocation %s: %w", shortID(a.ID), e.Humanize(err))
	}
	return nil
}

// AllocIDs lists short allocation IDs, for shell completion.
func (e *Env) AllocIDs(ctx context.Context) []string {
	allocs, _, err := e.Client.ListAllocations(ctx, nil)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(allocs))
	for _, a := range allocs {
		out = append(out, shortID(a.ID)+"\t"+a.Name)
	}
	return out
}
