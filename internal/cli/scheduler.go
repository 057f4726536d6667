package cli

import (
	"context"
	"fmt"
)

// SchedulerStatus prints the scheduler's architecture and figures.
func (e *Env) SchedulerStatus(ctx context.Context) error {
	st, err := e.Client.SchedulerStatus(ctx)
	if err != nil {
		return fmt.Errorf("scheduler status: %w", e.Humanize(err))
	}
	if ok, err := e.printData(st); ok {
		return err
	}
	k := &kv{}
	k.add("Architecture", orDash(st.Architecture))
	k.add("Queue depth", st.QueueDepth)
	k.add("Evaluations", st.Evaluations)
	k.add("Placements", st.Placements)
	k.add("Preemptions", st.Preemptions)
	k.add("Busy", fmt.Sprintf("%.1f%%", 100*st.BusyFraction))
	k.add("Latency p50", fmt.Sprintf("%.2f ms", st.LatencyP50Ms))
	k.add("Latency p99", fmt.Sprintf("%.2f ms", st.LatencyP99Ms))
	return k.write(e.Out)
}
