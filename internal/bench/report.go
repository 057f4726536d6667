package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one run; its JSON form (`-o json`) is what
// `gantry bench compare` reads.
type Report struct {
	Workload  string    `json:"workload"`
	StartedAt time.Time `json:"started_at"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	Server    string    `json:"server"` // process or inproc
	// Architecture is the server's scheduler; Workers its parallel
	// shared-state workers (0 for monolithic).
	Architecture string `json:"architecture,omitempty"`
	Workers      int    `json:"workers,omitempty"`
	// TLS says the control plane ran with mutual TLS (--tls).
	TLS bool `json:"tls,omitempty"`

	Nodes int `json:"nodes"`
	Jobs  int `json:"jobs"`
	Tasks int `json:"tasks"`

	Placed   int64 `json:"placed"`
	Running  int64 `json:"running"`
	Received int64 `json:"received"` // allocations received, replacements included
	Unplaced int64 `json:"unplaced"`

	RegisterSeconds       float64 `json:"register_s"`
	SubmitSeconds         float64 `json:"submit_s"`
	TimeToPlaceAllSeconds float64 `json:"time_to_place_all_s"`
	PlacementsPerSecond   float64 `json:"placements_per_s"`

	SubmitToPlaced  Percentiles `json:"submit_to_placed"`
	SubmitToRunning Percentiles `json:"submit_to_running"`
	// PlacedStages splits submit-to-placed into stages (stages.go).
	PlacedStages []StageFigure `json:"submit_to_placed_stages,omitempty"`

	Scheduler SchedulerFigures `json:"scheduler"`
	// RaftWritesWaited is the mean number of log writes (each with its
	// fsync) the server's Raft entries waited for during placement, from
	// gantry_raft_log_writes_waited (0: not reported).
	RaftWritesWaited float64 `json:"raft_log_writes_waited,omitempty"`

	// ServerCPUSeconds is CPU used from the first submission to the end
	// of placement; ServerCPUTotalSeconds includes node registration.
	ServerCPUSeconds      float64 `json:"server_cpu_s"`
	ServerCPUTotalSeconds float64 `json:"server_cpu_total_s"`
	ServerPeakRSSMB       float64 `json:"server_peak_rss_mb"`
	UsageScope            string  `json:"usage_scope"`
	// BenchCPUSeconds is the CPU the bench process itself used (the
	// simulated nodes, submitters and recorder) in the same window as
	// ServerCPUSeconds; BenchCPUTotalSeconds includes node registration.
	// With the server in process they include the server's.
	BenchCPUSeconds      float64 `json:"bench_cpu_s"`
	BenchCPUTotalSeconds float64 `json:"bench_cpu_total_s"`
	// IdleCPUPerSecond is what an in-process peer cluster uses doing
	// nothing (heartbeats, loads, reports, ticks), in CPU seconds per
	// second, measured before the first submission (peer runs only).
	IdleCPUPerSecond float64 `json:"idle_cpu_per_s,omitempty"`
	// CPUWindowSeconds is how long ServerCPUSeconds was measured over
	// (peer runs: from the first submission to the last placement seen).
	CPUWindowSeconds float64 `json:"cpu_window_s,omitempty"`
	// SteadyCPUPerSecond is the peer cluster's CPU seconds per second
	// with the placed copies running, measured after placement.
	SteadyCPUPerSecond float64 `json:"steady_cpu_per_s,omitempty"`

	// MachineCPUs is each emulated machine's CPU quota (--machine-cpus;
	// 0: none), and Machines each machine's cgroup figures over the CPU
	// window (from the first submission to the end of placement).
	MachineCPUs float64          `json:"machine_cpus,omitempty"`
	Machines    []MachineFigures `json:"machines,omitempty"`

	SubmitErrors int `json:"submit_errors"`
	// SubmitRetries counts submissions a peer refused as busy (503, 429)
	// and the submitter sent again (peer runs).
	SubmitRetries int64    `json:"submit_retries,omitempty"`
	NodeErrors    int      `json:"node_errors"`
	Errors        []string `json:"errors,omitempty"`
	TimedOut      bool     `json:"timed_out"`

	// Events is what the event subscribers received (--event-subscribers).
	Events *EventFigures `json:"events,omitempty"`

	// PeerTimeline is where a peer run of child processes spent its
	// time (peertimeline.go).
	PeerTimeline *PeerTimeline `json:"peer_timeline,omitempty"`

	Check    CheckResult `json:"check"`
	Profiles []string    `json:"profiles,omitempty"`
}

// MachineFigures is one emulated machine's CPU over a run's CPU window.
type MachineFigures struct {
	Name       string  `json:"name"`
	QuotaCPUs  float64 `json:"quota_cpus"`
	CPUSeconds float64 `json:"cpu_s"`
	// QuotaUsed is CPUSeconds over the quota's CPU-seconds in the window:
	// near 1 the machine was bound by its quota; well below with few
	// throttled periods and a long WaitSeconds, the host starved it.
	QuotaUsed        float64 `json:"quota_used"`
	Periods          int64   `json:"periods"`
	ThrottledPeriods int64   `json:"throttled_periods"`
	ThrottledSeconds float64 `json:"throttled_s"`
	// WaitSeconds is its threads' time runnable but not running (the
	// kernel's schedstat: throttled time and waiting behind other
	// processes for a core).
	WaitSeconds float64 `json:"runqueue_wait_s"`
}

// machineFigures turns two snapshots of each machine's cgroup into the
// report's figures over window.
func machineFigures(ms []*machineGroup, before, after []cpuStat, window time.Duration) []MachineFigures {
	out := make([]MachineFigures, len(ms))
	for i, m := range ms {
		d := after[i].sub(before[i])
		f := MachineFigures{Name: m.Name, QuotaCPUs: m.CPUs, CPUSeconds: d.Usage.Seconds(), Periods: d.Periods,
			ThrottledPeriods: d.ThrottledPeriods, ThrottledSeconds: d.Throttled.Seconds(), WaitSeconds: d.Wait.Seconds()}
		if window > 0 {
			f.QuotaUsed = f.CPUSeconds / (m.CPUs * window.Seconds())
		}
		out[i] = f
	}
	return out
}

// machineSummary is one line on the machines: quota use and throttling,
// as min/median/max over them.
func (r *Report) machineSummary() string {
	if len(r.Machines) == 0 {
		return "-"
	}
	var used, thr []float64
	wait := 0.0
	for _, m := range r.Machines {
		used = append(used, 100*m.QuotaUsed)
		if m.Periods > 0 {
			thr = append(thr, 100*float64(m.ThrottledPeriods)/float64(m.Periods))
		} else {
			thr = append(thr, 0)
		}
		wait += m.WaitSeconds
	}
	mmm := func(v []float64) string {
		slices.Sort(v)
		return fmt.Sprintf("%.0f/%.0f/%.0f%%", v[0], v[len(v)/2], v[len(v)-1])
	}
	return fmt.Sprintf("%d × %.2g CPU: quota used %s, periods throttled %s (min/median/max), run-queue wait %.1f s", len(r.Machines), r.MachineCPUs, mmm(used), mmm(thr), wait)
}

// SchedulerFigures come from the server's scheduler status and metrics.
type SchedulerFigures struct {
	Evaluations  uint64  `json:"evaluations"`
	Placements   uint64  `json:"placements"`
	Preemptions  uint64  `json:"preemptions"`
	BusySeconds  float64 `json:"busy_s"`
	BusyFraction float64 `json:"busy_fraction"`
	// Shared-state figures (zero for monolithic) and the scheduler's own
	// per-job latency (snapshot to commit, retries included).
	PlansSubmitted   uint64  `json:"plans_submitted,omitempty"`
	Conflicts        uint64  `json:"conflicts,omitempty"`
	ConflictFraction float64 `json:"conflict_fraction"`
	Retries          uint64  `json:"retries,omitempty"`
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
	// Two-level figures (zero for the other architectures).
	OffersSent     uint64  `json:"offers_sent,omitempty"`
	Declines       uint64  `json:"declines,omitempty"`
	Rescinds       uint64  `json:"rescinds,omitempty"`
	OfferHoldP99Ms float64 `json:"offer_hold_p99_ms,omitempty"`
}

func newReport(w *Workload, server string) *Report {
	gov, cpus := hostFacts()
	return &Report{Workload: w.Name, StartedAt: time.Now().UTC(), GoVersion: gov, CPUs: cpus, Server: server,
		Nodes: w.TotalNodes(), Jobs: w.TotalJobs(), Tasks: w.TotalTasks()}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	lat := func(p Percentiles) string {
		return fmt.Sprintf("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (n=%d)", p.P50, p.P90, p.P99, p.Max, p.N)
	}
	tlsNote := ""
	if r.TLS {
		tlsNote = " with TLS"
	}
	row("workload", "%s  (%d nodes, %d jobs, %d tasks; server %s%s; %d CPUs; %s)", r.Workload, r.Nodes, r.Jobs, r.Tasks, r.Server, tlsNote, r.CPUs, r.GoVersion)
	row("placed", "%d of %d (running %d, unplaced %d, received %d)", r.Placed, r.Tasks, r.Running, r.Unplaced, r.Received)
	row("placements/s", "%.0f", r.PlacementsPerSecond)
	row("time to place all", "%.2f s  (submission took %.2f s; node registration %.2f s)", r.TimeToPlaceAllSeconds, r.SubmitSeconds, r.RegisterSeconds)
	row("submit to placed", "%s", lat(r.SubmitToPlaced))
	for _, st := range r.PlacedStages {
		row("  "+st.Stage, "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (slowest 1%%: mean %.2f ms)", st.P50, st.P90, st.P99, st.TailMeanMs)
	}
	row("submit to running", "%s", lat(r.SubmitToRunning))
	if r.RaftWritesWaited > 0 {
		row("raft", "%.2f log writes waited per entry (mean)", r.RaftWritesWaited)
	}
	row("scheduler", "busy %.0f%% (%.2f s), %d evaluations, %d placements, %d preemptions",
		100*r.Scheduler.BusyFraction, r.Scheduler.BusySeconds, r.Scheduler.Evaluations, r.Scheduler.Placements, r.Scheduler.Preemptions)
	if r.Architecture != "" {
		row("architecture", "%s", r.ArchitectureLabel())
	}
	if r.Scheduler.PlansSubmitted > 0 {
		row("plans", "%d submitted, %d conflicts (fraction %.3f), %d retries; scheduler latency p99 %.2f ms",
			r.Scheduler.PlansSubmitted, r.Scheduler.Conflicts, r.Scheduler.ConflictFraction, r.Scheduler.Retries, r.Scheduler.LatencyP99Ms)
	}
	perPlacement := 0.0
	if r.Placed > 0 {
		perPlacement = r.ServerCPUSeconds / float64(r.Placed) * 1e6
	}
	row("server CPU", "%.2f s during placement (%.0f µs per placement; %.2f s total; %s)",
		r.ServerCPUSeconds, perPlacement, r.ServerCPUTotalSeconds, r.UsageScope)
	benchPer := 0.0
	if r.Placed > 0 {
		benchPer = r.BenchCPUSeconds / float64(r.Placed) * 1e6
	}
	row("bench CPU", "%.2f s during placement (%.0f µs per placement; %.2f s total; simulated nodes and submitters)",
		r.BenchCPUSeconds, benchPer, r.BenchCPUTotalSeconds)
	row("server peak RSS", "%.0f MiB", r.ServerPeakRSSMB)
	if len(r.Machines) > 0 {
		row("machines", "%s", r.machineSummary())
	}
	if e := r.Events; e != nil {
		row("event stream", "%d subscribers received %d events (%.0f/s in all, %.1f MiB), %d dropped",
			e.Subscribers, e.Events, e.PerSecond, float64(e.Bytes)/(1<<20), e.Dropped)
		for _, why := range e.Reasons {
			row("", "dropped: %s", why)
		}
	}
	row("errors", "%d submit, %d node requests", r.SubmitErrors, r.NodeErrors)
	if r.SubmitRetries > 0 {
		row("", "%d submissions refused as busy and sent again", r.SubmitRetries)
	}
	verdict := "OK"
	if !r.Check.OK {
		verdict = "FAILED"
	}
	row("final-state check", "%s: %d nodes, %d allocations (at most %d on a node), %d over-committed, %d duplicates, %d missing, %d unknown, %d lost",
		verdict, r.Check.Nodes, r.Check.Allocs, r.Check.MaxNodeAllocs, r.Check.Overcommitted, r.Check.Duplicates, r.Check.Missing, r.Check.Unknown, r.Check.NotOnServer)
	if r.Check.RanTwice > 0 || r.Check.Replaced > 0 {
		row("", "%d of the duplicates ran to completion twice; %d allocations replaced (stopped, killed, failed or lost)", r.Check.RanTwice, r.Check.Replaced)
	}
	for _, p := range r.Check.Problems {
		row("", "%s", p)
	}
	for _, e := range r.Errors {
		row("error", "%s", e)
	}
	for _, p := range r.Profiles {
		row("profile", "%s", p)
	}
	return tw.Flush()
}

// ReadReport reads a report written with -o json.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("report %s: not a bench JSON report: %w", path, err)
	}
	if r.Workload == "" {
		return nil, fmt.Errorf("report %s: no workload name; not a bench JSON report", path)
	}
	return &r, nil
}

// Comparison is one figure of two reports.
type Comparison struct {
	Metric string  `json:"metric"`
	Old    float64 `json:"old"`
	New    float64 `json:"new"`
	// Ratio is new/old (NaN when old is 0).
	Ratio float64 `json:"ratio"`
	// Better says whether higher values are better.
	HigherIsBetter bool `json:"higher_is_better"`
	// Change is "better", "worse" or "same" (within the tolerance).
	Change string `json:"change"`
}

// Compare lines up the figures of two reports. A change within tolerance
// (a fraction, e.g. 0.05) counts as "same".
func Compare(old, cur *Report, tolerance float64) []Comparison {
	type metric struct {
		name   string
		higher bool
		get    func(*Report) float64
	}
	// Figures added later: reports from before them have 0, which
	// compares as "same" rather than as a change.
	added := map[string]bool{"bench CPU during placement (s)": true}
	metrics := []metric{
		{"placements/s", true, func(r *Report) float64 { return r.PlacementsPerSecond }},
		{"time to place all (s)", false, func(r *Report) float64 { return r.TimeToPlaceAllSeconds }},
		{"submit to placed p50 (ms)", false, func(r *Report) float64 { return r.SubmitToPlaced.P50 }},
		{"submit to placed p90 (ms)", false, func(r *Report) float64 { return r.SubmitToPlaced.P90 }},
		{"submit to placed p99 (ms)", false, func(r *Report) float64 { return r.SubmitToPlaced.P99 }},
		{"submit to running p50 (ms)", false, func(r *Report) float64 { return r.SubmitToRunning.P50 }},
		{"submit to running p99 (ms)", false, func(r *Report) float64 { return r.SubmitToRunning.P99 }},
		{"scheduler busy fraction", false, func(r *Report) float64 { return r.Scheduler.BusyFraction }},
		{"server CPU during placement (s)", false, func(r *Report) float64 { return r.ServerCPUSeconds }},
		{"bench CPU during placement (s)", false, func(r *Report) float64 { return r.BenchCPUSeconds }},
		{"server peak RSS (MiB)", false, func(r *Report) float64 { return r.ServerPeakRSSMB }},
		{"placed", true, func(r *Report) float64 { return float64(r.Placed) }},
	}
	out := make([]Comparison, 0, len(metrics))
	for _, m := range metrics {
		c := Comparison{Metric: m.name, Old: m.get(old), New: m.get(cur), HigherIsBetter: m.higher, Change: "same"}
		c.Ratio = math.NaN()
		if c.Old != 0 {
			c.Ratio = c.New / c.Old
		}
		switch {
		case c.Old == c.New, added[m.name] && (c.Old == 0 || c.New == 0):
		case c.Old == 0:
			c.Change = "worse"
			if (c.New > 0) == m.higher {
				c.Change = "better"
			}
		case math.Abs(c.Ratio-1) > tolerance:
			c.Change = "worse"
			if (c.Ratio > 1) == m.higher {
				c.Change = "better"
			}
		}
		out = append(out, c)
	}
	return out
}

// WriteComparison prints a comparison table.
func WriteComparison(w io.Writer, old, cur *Report, cs []Comparison) error {
	if old.Workload != cur.Workload {
		fmt.Fprintf(w, "note: comparing different workloads (%s vs %s)\n", old.Workload, cur.Workload)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\told\tnew\tnew/old\tchange\t")
	for _, c := range cs {
		ratio := "-"
		if !math.IsNaN(c.Ratio) {
			ratio = fmt.Sprintf("%.3f", c.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%s\t%s\t\n", c.Metric, c.Old, c.New, ratio, strings.ToUpper(c.Change[:1])+c.Change[1:])
	}
	return tw.Flush()
}
