package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-project/gantry/api"
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
	k.add("Decisions/s", fmt.Sprintf("%.1f", st.DecisionsPerSec))
	if len(st.Frameworks) > 0 {
		return e.twoLevelStatus(k, st)
	}
	k.add("Blocked jobs", st.BlockedJobs)
	k.add("Unblocked", st.Unblocked)
	if len(st.Schedulers) == 0 {
		return k.write(e.Out)
	}
	k.add("Plans submitted", st.PlansSubmitted)
	k.add("Conflicts", st.Conflicts)
	k.add("Conflict fraction", fmt.Sprintf("%.3f", st.ConflictFraction))
	k.add("Retries", st.Retries)
	if err := k.write(e.Out); err != nil {
		return err
	}
	fmt.Fprintln(e.Out)
	t := newTable("SCHEDULER", "JOB TYPES", "WORKERS", "BUSY", "QUEUE", "EVALUATIONS", "PLACEMENTS", "PLANS", "CONFLICTS", "RETRIES")
	for _, p := range st.Schedulers {
		t.row(p.Name, strings.Join(p.JobTypes, ","), p.Workers, fmt.Sprintf("%.1f%%", 100*p.BusyFraction),
			p.QueueDepth, p.Evaluations, p.Placements, p.PlansSubmitted, p.Conflicts, p.Retries)
	}
	return t.write(e.Out)
}

// twoLevelStatus adds the two-level figures: the offers and each
// framework's share.
func (e *Env) twoLevelStatus(k *kv, st *api.SchedulerStatus) error {
	k.add("Offers outstanding", st.OffersOutstanding)
	k.add("Offer hold p50", fmt.Sprintf("%.2f ms", st.OfferHoldP50Ms))
	k.add("Offer hold p99", fmt.Sprintf("%.2f ms", st.OfferHoldP99Ms))
	k.add("Offers sent", st.OffersSent)
	k.add("Declines", st.Declines)
	k.add("Rescinds", st.Rescinds)
	k.add("Offers expired", st.OffersExpired)
	k.add("Jobs waiting", st.JobsWaiting)
	k.add("Allocation rounds", st.AllocationRounds)
	k.add("Round p99", fmt.Sprintf("%.2f ms", st.AllocationRoundP99Ms))
	if err := k.write(e.Out); err != nil {
		return err
	}
	fmt.Fprintln(e.Out)
	return frameworkTable(e.Out, st.Frameworks)
}
