package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/jobspec"
	"github.com/gantry-project/gantry/internal/structs"
)

// ErrPlanChanges is returned by JobPlan when the plan creates or stops
// copies: `gantry job plan` exits 1 then, as Nomad's (0: no change).
var ErrPlanChanges = errors.New("the plan places or stops copies")

// JobValidate checks a job document with the server's rules, without a
// server.
func (e *Env) JobValidate(path string, data []byte) error {
	job, err := jobspec.ParseAndValidate(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if ok, err := e.printData(job); ok {
		return err
	}
	fmt.Fprintf(e.Out, "Job %s (%s) is valid\n", job.Name, job.Type)
	if p := job.Periodic; p != nil {
		if next, err := p.Next(e.Now()); err == nil && !next.IsZero() {
			fmt.Fprintf(e.Out, "Next launch: %s\n", next.Format(time.RFC3339))
		}
	}
	return nil
}

// jobForSubmit parses a document and prepares it for the server as JobRun
// does (the request's namespace unless the document names one).
func (e *Env) jobForSubmit(path string, data []byte) (*api.Job, error) {
	job, err := jobspec.ParseAndValidate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	written := ""
	if raw, err := jobspec.Parse(data); err == nil {
		written = raw.Namespace
	}
	switch {
	case written == "":
		job.Namespace, job.ID = "", ""
	case e.Client.Namespace() == "":
		e.Client = e.Client.WithNamespace(written)
	}
	return job, nil
}

// JobPlan asks the leader what running the document would do and prints
// the diff and the scheduler's decisions, with the index for `job run
// --check-index`. It returns ErrPlanChanges when copies would be placed or
// stopped.
func (e *Env) JobPlan(ctx context.Context, path string, data []byte) error {
	job, err := e.jobForSubmit(path, data)
	if err != nil {
		return err
	}
	p, err := e.Client.PlanJob(ctx, job)
	if err != nil {
		return fmt.Errorf("planning job %s: %w", job.Name, e.Humanize(err))
	}
	if ok, err := e.printData(p); ok {
		if err == nil && planChanges(p) {
			err = ErrPlanChanges
		}
		return err
	}
	fmt.Fprintf(e.Out, "Job %s: %s (version %d)\n", p.JobID, p.Update, p.Version)
	for _, d := range p.Diff {
		switch {
		case d.Old == "":
			fmt.Fprintf(e.Out, "  + %s: %s\n", d.Field, sanitize(d.New))
		case d.New == "":
			fmt.Fprintf(e.Out, "  - %s: %s\n", d.Field, sanitize(d.Old))
		default:
			fmt.Fprintf(e.Out, "  ~ %s: %s => %s\n", d.Field, sanitize(d.Old), sanitize(d.New))
		}
	}
	fmt.Fprintln(e.Out)
	fmt.Fprintln(e.Out, "Scheduler dry run:")
	fmt.Fprint(e.Out, PlanSummary(p))
	if p.Failure != nil && p.Unplaced > 0 {
		fmt.Fprintf(e.Out, "  - placement: %s\n", placementFailureText(p.Failure))
	}
	if p.NextLaunch != 0 {
		fmt.Fprintf(e.Out, "  - next periodic launch: %s\n", time.Unix(0, p.NextLaunch).UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(e.Out, "\nJob modify index: %d\nTo submit the job with this check (refused if it changed since):\n  gantry job run%s --check-index %d %s\n",
		p.JobModifyIndex, e.nsFlag(), p.JobModifyIndex, path)
	if planChanges(p) {
		return ErrPlanChanges
	}
	return nil
}

func planChanges(p *api.JobPlanResponse) bool {
	return p.Place+p.Replace > 0 || len(p.Stop) > 0
}

// PlanSummary is the scheduler part of a plan, one line per kind, e.g.
// "  - place 2 copies".
func PlanSummary(p *api.JobPlanResponse) string {
	var b strings.Builder
	line := func(n int, what string) {
		if n > 0 {
			fmt.Fprintf(&b, "  - %s %s\n", what, plural(n, "1 copy", fmt.Sprintf("%d copies", n)))
		}
	}
	line(p.Place, "place")
	line(p.Replace, "replace (destructive update)")
	line(p.InPlace, "update in place")
	for _, desc := range slices.Sorted(mapKeys(p.Stop)) {
		line(p.Stop[desc], "stop ("+desc+")")
	}
	line(p.Ignore, "leave unchanged")
	line(p.Unplaced, "cannot place")
	if p.Preemptions > 0 {
		fmt.Fprintf(&b, "  - preempt %d allocations of other jobs\n", p.Preemptions)
	}
	if b.Len() == 0 {
		b.WriteString("  - no change\n")
	}
	return b.String()
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// JobHistory prints a job's kept versions, newest first; with diffs, what
// changed in each.
func (e *Env) JobHistory(ctx context.Context, name string, diffs bool) error {
	h, err := e.Client.JobVersions(ctx, name)
	if err != nil {
		return fmt.Errorf("job %s history: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(h); ok {
		return err
	}
	t := newTable("VERSION", "SUBMITTED", "COUNT", "CHANGES")
	for i, v := range h.Versions {
		changes := "-"
		if i < len(h.Diffs) && i+1 < len(h.Versions) {
			var fields []string
			for _, d := range h.Diffs[i] {
				fields = append(fields, d.Field)
			}
			changes = orDash(strings.Join(fields, ", "))
		}
		t.row(v.Version, timestamp(e.Now(), v.SubmitTime), v.Count, changes)
	}
	if err := t.write(e.Out); err != nil {
		return err
	}
	if !diffs {
		return nil
	}
	for i, v := range h.Versions {
		if i >= len(h.Diffs) || i+1 >= len(h.Versions) {
			continue
		}
		fmt.Fprintf(e.Out, "\nVersion %d (from %d):\n", v.Version, h.Versions[i+1].Version)
		for _, d := range h.Diffs[i] {
			fmt.Fprintf(e.Out, "  ~ %s: %s => %s\n", d.Field, orDash(sanitize(d.Old)), orDash(sanitize(d.New)))
		}
	}
	return nil
}

// JobRevert registers a kept version of a job again.
func (e *Env) JobRevert(ctx context.Context, name, version string) error {
	v, err := strconv.ParseUint(version, 10, 64)
	if err != nil || v == 0 {
		return fmt.Errorf("version %q: must be a version number from `gantry job history %s`", version, name)
	}
	resp, err := e.Client.RevertJob(ctx, name, v, nil)
	if err != nil {
		return fmt.Errorf("reverting job %s to version %d: %w", name, v, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	fmt.Fprintf(e.Out, "Job %s reverted to the spec of version %d: now version %d at index %d\n", name, v, resp.Version, resp.Index)
	return nil
}

// ParseMeta reads --meta k=v flags.
func ParseMeta(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	if len(kvs) > structs.MaxMetaKeys {
		return nil, fmt.Errorf("--meta: at most %d keys", structs.MaxMetaKeys)
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--meta %q: want KEY=VALUE", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--meta %q: key %q given twice", kv, k)
		}
		out[k] = v
	}
	return out, nil
}

// ReadPayload reads a dispatch payload from a file or stdin ("-"),
// refusing more than structs.MaxDispatchPayload bytes before reading it
// whole.
func ReadPayload(path string, stdin io.Reader) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readLimited(path, stdin, structs.MaxDispatchPayload, "payload "+path)
	if err != nil {
		return nil, err
	}
	if len(data) > structs.MaxDispatchPayload {
		return nil, fmt.Errorf("payload %s: larger than the %d KiB limit", path, structs.MaxDispatchPayload>>10)
	}
	return data, nil
}

// JobDispatch starts a child of a parameterized job.
func (e *Env) JobDispatch(ctx context.Context, name string, payload []byte, meta map[string]string) error {
	resp, err := e.Client.DispatchJob(ctx, name, payload, meta)
	if err != nil {
		return fmt.Errorf("dispatching job %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	fmt.Fprintf(e.Out, "Dispatched job %s at index %d\n`gantry job status%s %s` follows it\n", resp.JobID, resp.Index, e.nsFlag(), structs.JobName(resp.JobID))
	return nil
}

// runNoFollow ends `job run` for jobs with no count to follow.
func (e *Env) runNoFollow(resp *api.JobRegisterResponse, job *api.Job) error {
	if ok, err := e.printData(resp); ok {
		return err
	}
	switch {
	case job.Periodic != nil:
		if next, err := job.Periodic.Next(e.Now()); err == nil && !next.IsZero() {
			fmt.Fprintf(e.Out, "Periodic job: next launch %s; `gantry job list` shows its children (%s<unix time>)\n", next.Format(time.RFC3339), job.Name+structs.PeriodicSuffix)
		}
	case job.Parameterized != nil:
		fmt.Fprintf(e.Out, "Parameterized job: start it with `gantry job dispatch%s %s`\n", e.nsFlag(), job.Name)
	default:
		fmt.Fprintf(e.Out, "%s job: one copy per eligible node; `gantry job status%s %s` shows them\n", job.Type, e.nsFlag(), job.Name)
	}
	return nil
}
