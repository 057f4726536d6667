package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// ArchitectureLabel names the run's scheduler: "monolithic",
// "shared-state ×4".
func (r *Report) ArchitectureLabel() string {
	switch {
	case r.Architecture == "":
		return "-"
	case r.Workers > 0:
		return fmt.Sprintf("%s ×%d", r.Architecture, r.Workers)
	}
	return r.Architecture
}

// WriteSideBySide writes several reports of one workload (one per
// scheduler architecture or worker count) as columns, so the figures can be
// compared row by row.
func WriteSideBySide(w io.Writer, reps []*Report) error {
	if len(reps) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(r *Report) string) {
		cells := make([]string, len(reps))
		for i, r := range reps {
			cells[i] = cell(r)
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", name, strings.Join(cells, "\t"))
	}
	f := func(format string, v func(r *Report) float64) func(r *Report) string {
		return func(r *Report) string { return fmt.Sprintf(format, v(r)) }
	}
	r0 := reps[0]
	fmt.Fprintf(w, "workload %s: %d nodes, %d jobs, %d tasks; server %s; %d CPUs\n\n", r0.Workload, r0.Nodes, r0.Jobs, r0.Tasks, r0.Server, r0.CPUs)
	row("scheduler", func(r *Report) string { return r.ArchitectureLabel() })
	row("placed", func(r *Report) string { return fmt.Sprintf("%d/%d", r.Placed, r.Tasks) })
	row("placements/s", f("%.0f", func(r *Report) float64 { return r.PlacementsPerSecond }))
	row("time to place all (s)", f("%.2f", func(r *Report) float64 { return r.TimeToPlaceAllSeconds }))
	row("submit→placed p50 (ms)", f("%.2f", func(r *Report) float64 { return r.SubmitToPlaced.P50 }))
	row("submit→placed p99 (ms)", f("%.2f", func(r *Report) float64 { return r.SubmitToPlaced.P99 }))
	row("submit→running p99 (ms)", f("%.2f", func(r *Report) float64 { return r.SubmitToRunning.P99 }))
	row("scheduler latency p99 (ms)", f("%.2f", func(r *Report) float64 { return r.Scheduler.LatencyP99Ms }))
	row("evaluations", f("%.0f", func(r *Report) float64 { return float64(r.Scheduler.Evaluations) }))
	row("plans submitted", f("%.0f", func(r *Report) float64 { return float64(r.Scheduler.PlansSubmitted) }))
	row("conflicts", f("%.0f", func(r *Report) float64 { return float64(r.Scheduler.Conflicts) }))
	row("conflict fraction", f("%.3f", func(r *Report) float64 { return r.Scheduler.ConflictFraction }))
	row("retries", f("%.0f", func(r *Report) float64 { return float64(r.Scheduler.Retries) }))
	row("offers sent", f("%.0f", func(r *Report) float64 { return float64(r.Scheduler.OffersSent) }))
	row("offers declined / rescinded", func(r *Report) string {
		return fmt.Sprintf("%d / %d", r.Scheduler.Declines, r.Scheduler.Rescinds)
	})
	row("offer hold p99 (ms)", f("%.2f", func(r *Report) float64 { return r.Scheduler.OfferHoldP99Ms }))
	row("scheduler busy", f("%.0f%%", func(r *Report) float64 { return 100 * r.Scheduler.BusyFraction }))
	row("server CPU (s)", f("%.2f", func(r *Report) float64 { return r.ServerCPUSeconds }))
	row("CPU per placement (µs)", f("%.0f", func(r *Report) float64 {
		if r.Placed == 0 {
			return 0
		}
		return r.ServerCPUSeconds / float64(r.Placed) * 1e6
	}))
	row("placements per CPU-second", f("%.0f", func(r *Report) float64 {
		if r.ServerCPUSeconds == 0 {
			return 0
		}
		return float64(r.Placed) / r.ServerCPUSeconds
	}))
	row("CPU per placement net of idle (µs)", func(r *Report) string {
		if r.Placed == 0 || r.IdleCPUPerSecond == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", (r.ServerCPUSeconds-r.IdleCPUPerSecond*r.CPUWindowSeconds)/float64(r.Placed)*1e6)
	})
	row("idle CPU (% of a core)", f("%.0f%%", func(r *Report) float64 { return 100 * r.IdleCPUPerSecond }))
	row("CPU after placement (% of a core)", f("%.0f%%", func(r *Report) float64 { return 100 * r.SteadyCPUPerSecond }))
	if slices.ContainsFunc(reps, func(r *Report) bool { return len(r.Machines) > 0 }) {
		row("machines", func(r *Report) string {
			if len(r.Machines) == 0 {
				return "-"
			}
			return fmt.Sprintf("%d × %.2g CPU", len(r.Machines), r.MachineCPUs)
		})
		row("quota used, median (%)", func(r *Report) string {
			if len(r.Machines) == 0 {
				return "-"
			}
			v := make([]float64, len(r.Machines))
			for i, m := range r.Machines {
				v[i] = 100 * m.QuotaUsed
			}
			slices.Sort(v)
			return fmt.Sprintf("%.0f", v[len(v)/2])
		})
		row("periods throttled (%)", func(r *Report) string {
			var p, t int64
			for _, m := range r.Machines {
				p, t = p+m.Periods, t+m.ThrottledPeriods
			}
			if p == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f", 100*float64(t)/float64(p))
		})
	}
	row("server peak RSS (MiB)", f("%.0f", func(r *Report) float64 { return r.ServerPeakRSSMB }))
	row("final-state check", func(r *Report) string {
		if r.Check.OK {
			return "OK"
		}
		return "FAILED"
	})
	return tw.Flush()
}
