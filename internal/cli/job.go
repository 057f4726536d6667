package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/jobspec"
	"github.com/gantry-project/gantry/internal/structs"
)

// DefaultRunTimeout bounds how long `job run` follows a deployment.
const DefaultRunTimeout = 2 * time.Minute

// RunOptions are the flags of `job run`.
type RunOptions struct {
	// Detach returns after registering instead of following placement.
	Detach bool
	// Timeout bounds the follow; 0 means DefaultRunTimeout.
	Timeout time.Duration
	// CheckIndex, when set, registers only if the job's modify index is
	// still this one (from `job plan`; 0: the job must not exist).
	CheckIndex *uint64
}

// ReadJobFile reads a job document from path, or from stdin for "-",
// refusing files over the parser's size limit before reading them whole.
func ReadJobFile(path string, stdin io.Reader) ([]byte, error) {
	data, err := readLimited(path, stdin, jobspec.MaxSize, path)
	if err != nil {
		return nil, err
	}
	if len(data) > jobspec.MaxSize {
		return nil, fmt.Errorf("%s: %w", path, jobspec.ErrTooLarge)
	}
	return data, nil
}

// JobRun checks a job document locally, registers it, and unless detached
// follows the deployment until every copy runs (service) or finishes
// (batch). Errors matching ErrNotConverged mean the job was registered but
// did not reach its goal.
func (e *Env) JobRun(ctx context.Context, path string, data []byte, o RunOptions) error {
	job, err := jobspec.ParseAndValidate(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// The namespace as the document writes it ("" if it names none; the
	// check above filled in the default).
	written := ""
	if raw, err := jobspec.Parse(data); err == nil {
		written = raw.Namespace
	}
	switch {
	case written == "":
		// The server puts the job in the request's namespace (-n).
		job.Namespace, job.ID = "", ""
	case e.Client.Namespace() == "":
		// The document names its namespace: follow the job there.
		e.Client = e.Client.WithNamespace(written)
	}
	var resp *api.JobRegisterResponse
	if o.CheckIndex != nil {
		resp, err = e.Client.RegisterJobIndex(ctx, job, *o.CheckIndex)
	} else {
		resp, err = e.Client.RegisterJob(ctx, job)
	}
	if err != nil {
		return fmt.Errorf("registering job %s: %w", job.Name, e.Humanize(err))
	}
	// Progress goes to stdout in table mode; with -o json|yaml stdout is
	// for the data, so progress goes to stderr.
	pw := &progressWriter{w: e.Out, tty: e.TTY}
	if e.Format != FormatTable {
		pw = &progressWriter{w: e.Err}
	}
	if o.Detach {
		if ok, err := e.printData(resp); ok {
			return err
		}
		fmt.Fprintf(e.Out, "Job %s registered: version %d at index %d\n", resp.JobID, resp.Version, resp.Index)
		return nil
	}
	fmt.Fprintf(pw.w, "Job %s registered: version %d at index %d\n", resp.JobID, resp.Version, resp.Index)
	if job.IsParent() || job.Type.PerNode() {
		// No count to converge to: templates launch children, per-node
		// jobs follow the nodes (job_versions.go).
		return e.runNoFollow(resp, job)
	}
	if job.Count == 0 {
		// Valid (a staged job), but usually a forgotten field.
		fmt.Fprintf(pw.w, "Note: count is 0, so nothing runs; set count in %s or use `gantry job scale%s %s N`\n", path, e.nsFlag(), job.Name)
	}

	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultRunTimeout
	}
	start := e.Now()
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if job.Rolls() {
		// A rolling update: follow its deployment until it ends.
		err := e.followDeployment(fctx, job.Name, resp.Version, resp.Index, job.Count, pw)
		pw.finish()
		switch {
		case err == nil:
			fmt.Fprintf(e.Out, "==> Job %s version %d: deployment done (%s)\n", resp.JobID, resp.Version, e.Now().Sub(start).Round(100*time.Millisecond))
			return nil
		case isTimeout(err) && ctx.Err() == nil:
			return notConvergedf("job %s: deployment of version %d not done within %s; `gantry deployment list%s` shows it", resp.JobID, resp.Version, timeout, e.nsFlag())
		case errors.Is(err, ErrNotConverged):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("stopped following job %s (Ctrl-C); its deployment goes on: `gantry deployment list%s` shows it", resp.JobID, e.nsFlag())
		case !errors.Is(err, errNoNewDeployment):
			return fmt.Errorf("following the deployment of job %s: %w", resp.JobID, e.Humanize(err))
		}
	}
	st, p, err := e.follow(fctx, job.Name, resp.Version, pw)
	pw.finish()
	if err != nil {
		if isTimeout(err) && ctx.Err() == nil {
			return notConverged(resp.JobID, timeout, st, p)
		}
		if errors.Is(err, ErrNotConverged) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped following job %s (Ctrl-C); it stays registered: `gantry job status%s %s` shows its progress", resp.JobID, e.nsFlag(), job.Name)
		}
		return fmt.Errorf("following job %s: %w", resp.JobID, e.Humanize(err))
	}
	if ok, err := e.printData(st); ok {
		return err
	}
	took := e.Now().Sub(start).Round(100 * time.Millisecond)
	if p.typ == structs.JobTypeBatch {
		fmt.Fprintf(e.Out, "==> Job %s version %d: all %d copies complete (%s)\n", resp.JobID, resp.Version, p.count, took)
	} else {
		fmt.Fprintf(e.Out, "==> Job %s version %d: %d/%d copies running (%s)\n", resp.JobID, resp.Version, p.running, p.count, took)
	}
	return nil
}

// JobList prints every job.
func (e *Env) JobList(ctx context.Context) error {
	jobs, _, err := e.Client.ListJobs(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing jobs: %w", e.Humanize(err))
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ID < jobs[j].ID })
	if ok, err := e.printData(jobs); ok {
		return err
	}
	if len(jobs) == 0 {
		fmt.Fprintln(e.Out, "No jobs")
		return nil
	}
	all := e.Client.Namespace() == structs.AllNamespaces
	header := []string{"ID", "TYPE", "PRIORITY", "STATUS", "COUNT", "RUNNING", "PENDING", "FAILED", "VERSION", "SUBMITTED"}
	if all {
		header = append([]string{"NAMESPACE"}, header...)
	}
	t := newTable(header...)
	for _, j := range jobs {
		status := j.Status
		if j.Stop {
			status += " (stopped)"
		}
		cells := []any{j.ID, j.Type, j.Priority, status, j.Count, j.Summary[structs.AllocClientRunning],
			j.Summary[structs.AllocClientPending], j.Summary[structs.AllocClientFailed], j.Version, age(e.Now(), j.SubmitTime)}
		if all {
			cells = append([]any{j.Namespace}, cells...)
			cells[1] = j.Name
		}
		t.row(cells...)
	}
	return t.write(e.Out)
}

// JobStatus prints a job, its allocation summary and table, and why copies
// are pending if they are.
func (e *Env) JobStatus(ctx context.Context, name string) error {
	st, _, err := e.Client.JobStatus(ctx, name, nil)
	if err != nil {
		return fmt.Errorf("job %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(st); ok {
		return err
	}
	j := st.Job
	now := e.Now()
	k := &kv{}
	k.add("ID", j.ID)
	if j.Namespace != "" && j.Namespace != structs.DefaultNamespace {
		k.add("Namespace", j.Namespace)
	}
	k.add("Type", j.Type)
	k.add("Priority", j.Priority)
	k.add("Count", j.Count)
	status := string(j.Status)
	if j.Stop {
		status += " (stopped)"
	}
	k.add("Status", status)
	k.add("Version", j.Version)
	if j.HasGroups() {
		gs := make([]string, len(j.Groups))
		for i := range j.Groups {
			v := j.GroupView(j.Groups[i].Name)
			gs[i] = fmt.Sprintf("%s (count %d, %s per copy, %d task(s), %s)", sanitize(v.Group), v.Count,
				cpuMem(v.TotalResources()), 1+len(v.Tasks), sanitize(v.Driver))
		}
		k.add("Groups", strings.Join(gs, "; "))
	} else {
		taskLines(k, j)
	}
	k.add("Placement", orDash(j.Placement))
	k.add("Restart", restartText(j.Restart))
	k.add("Reschedule", rescheduleText(j.Reschedule))
	if len(j.Constraints) > 0 {
		cs := make([]string, len(j.Constraints))
		for i, c := range j.Constraints {
			cs[i] = c.String()
		}
		k.add("Constraints", strings.Join(cs, "; "))
	}
	k.add("Submitted", timestamp(now, j.SubmitTime))
	if err := k.write(e.Out); err != nil {
		return err
	}

	fmt.Fprintln(e.Out, "\nSummary")
	if err := summaryTable(e.Out, st); err != nil {
		return err
	}

	if st.PlacementFailure != nil {
		fmt.Fprintf(e.Out, "\nPlacement failure\n  %s\n", placementFailureText(st.PlacementFailure))
	}
	if st.WaitingForOffers != "" {
		fmt.Fprintf(e.Out, "\nWaiting for offers\n  %s\n", sanitize(st.WaitingForOffers))
	}
	if len(st.Reschedules) > 0 {
		fmt.Fprintln(e.Out, "\nReschedules")
		for _, r := range st.Reschedules {
			fmt.Fprintf(e.Out, "  %s\n", sanitize(rescheduleLine(now, j.GroupView(r.Group), r)))
		}
	}
	var restarting []string
	for _, a := range st.Allocations {
		if l := restartingLine(now, a); l != "" {
			restarting = append(restarting, l)
		}
	}
	if len(restarting) > 0 {
		fmt.Fprintln(e.Out, "\nRestarting")
		for _, l := range restarting {
			fmt.Fprintf(e.Out, "  %s\n", sanitize(l))
		}
	}

	fmt.Fprintln(e.Out, "\nAllocations")
	if len(st.Allocations) == 0 {
		fmt.Fprintln(e.Out, "No allocations")
		return nil
	}
	return allocTable(e.Out, now, st.Allocations, true)
}

// allocTable writes allocations newest copy first within each index.
func allocTable(w io.Writer, now time.Time, allocs []*api.Allocation, withNode bool) error {
	sorted := append([]*api.Allocation(nil), allocs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.JobID != b.JobID {
			return a.JobID < b.JobID
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return a.CreateIndex > b.CreateIndex
	})
	header := []string{"ID", "NAME", "VERSION"}
	if withNode {
		header = append(header, "NODE")
	}
	header = append(header, "DESIRED", "STATUS")
	// HEALTH only once some copy reports one (agents before health
	// checks never do).
	withHealth := false
	for _, a := range sorted {
		withHealth = withHealth || a.Health != nil
	}
	if withHealth {
		header = append(header, "HEALTH")
	}
	header = append(header, "RESTARTS", "EXIT", "AGE")
	t := newTable(header...)
	for _, a := range sorted {
		exit := "-"
		if a.TaskState.State == structs.TaskStateDead || a.ClientTerminal() {
			exit = exitCode(a.TaskState)
		}
		cells := []any{shortID(a.ID), a.Name, a.JobVersion}
		if withNode {
			cells = append(cells, orDash(nodeLabel(a)))
		}
		cells = append(cells, a.DesiredStatus, a.ClientStatus)
		if withHealth {
			cells = append(cells, HealthText(a.Health))
		}
		cells = append(cells, a.TaskState.Restarts, exit, age(now, a.CreateTime))
		t.row(cells...)
	}
	return t.write(w)
}

// JobStop stops a job (its allocations stop, the job stays, `job run` or
// scale brings it back); purge removes it and its allocations.
func (e *Env) JobStop(ctx context.Context, name string, purge bool) error {
	resp, err := e.Client.StopJob(ctx, name, purge)
	if err != nil {
		return fmt.Errorf("stopping job %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	verb := "stopped"
	if purge {
		verb = "stopped and purged"
	}
	fmt.Fprintf(e.Out, "Job %s %s at index %d\n", name, verb, resp.Index)
	return nil
}

// JobScale changes a job's count.
func (e *Env) JobScale(ctx context.Context, name, count string) error {
	return e.JobScaleGroup(ctx, name, "", count)
}

// JobScaleGroup changes the count of a job's task group ("" for a job
// with one group).
func (e *Env) JobScaleGroup(ctx context.Context, name, group, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 || n > structs.MaxCount {
		return fmt.Errorf("count %q: must be a whole number from 0 to %d", count, structs.MaxCount)
	}
	resp, err := e.Client.ScaleJobGroup(ctx, name, group, n)
	if err != nil {
		return fmt.Errorf("scaling job %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	what := name
	if group != "" {
		what += " group " + group
	}
	fmt.Fprintf(e.Out, "Job %s scaled to %d at index %d\n", what, n, resp.Index)
	return nil
}

// JobNames lists job IDs, for shell completion.
func (e *Env) JobNames(ctx context.Context) []string {
	jobs, _, err := e.Client.ListJobs(ctx, nil)
	if err != nil {
		return nil
	}
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.Name
		if out[i] == "" {
			out[i] = j.ID // a server from before namespaces
		}
	}
	return out
}

// nsFlag is the -n flag that reaches the client's namespace again, for
// commands printed as hints ("" in the default namespace).
func (e *Env) nsFlag() string {
	ns := e.Client.Namespace()
	if ns == "" || ns == structs.DefaultNamespace {
		return ""
	}
	return " -n " + ns
}

// readLimited reads at most limit+1 bytes from the file at path, or from
// stdin for "-": one byte over the limit is enough for the caller to
// refuse the input without reading it whole. A read error names what.
func readLimited(path string, stdin io.Reader, limit int, what string) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return data, nil
}

// summaryTable writes a job's allocation counts by client status: one row
// per task group for a job with groups (with each group's count), one row
// for a job without.
func summaryTable(w io.Writer, st *api.JobStatusResponse) error {
	if len(st.Groups) == 0 {
		t := newTable("PENDING", "RUNNING", "COMPLETE", "FAILED", "LOST")
		cells := make([]any, len(clientStatuses))
		for i, s := range clientStatuses {
			cells[i] = st.Summary[s]
		}
		t.row(cells...)
		return t.write(w)
	}
	t := newTable("GROUP", "COUNT", "PENDING", "RUNNING", "COMPLETE", "FAILED", "LOST")
	for _, g := range st.Groups {
		cells := []any{sanitize(g.Name), g.Count}
		for _, s := range clientStatuses {
			cells = append(cells, g.Summary[s])
		}
		t.row(cells...)
	}
	return t.write(w)
}

// taskLines adds the driver, resources, tasks and volumes of a job without
// groups to its status.
func taskLines(k *kv, j *api.Job) {
	k.add("Driver", j.Driver)
	if len(j.Tasks) == 0 {
		k.add("Resources", cpuMem(j.Resources)+" per copy")
	} else {
		k.add("Resources", cpuMem(j.TotalResources())+" per copy, all tasks")
		tasks := []string{sanitize(j.Name) + " (main, " + j.Driver + ")"}
		for _, t := range j.Tasks {
			what := "sidecar"
			if t.Lifecycle != nil {
				what = t.Lifecycle.Hook
				if t.Lifecycle.Sidecar {
					what += " sidecar"
				}
			}
			tasks = append(tasks, sanitize(t.Name)+" ("+what+", "+t.Driver+")")
		}
		k.add("Tasks", strings.Join(tasks, ", "))
	}
	if len(j.Volumes) > 0 {
		vs := make([]string, 0, len(j.Volumes))
		for name, v := range j.Volumes {
			s := sanitize(name) + "=" + v.Type + ":" + sanitize(v.Source)
			if v.ReadOnly {
				s += " (ro)"
			}
			vs = append(vs, s)
		}
		sort.Strings(vs)
		k.add("Volumes", strings.Join(vs, ", "))
	}
}
