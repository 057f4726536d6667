package twolevel

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAllocationRound measures one allocation round at 10,000 nodes
// with four frameworks: "full" offers every node (each had its offer
// declined since the last round: the worst case, as after a leader change
// or a revive), "incremental" the 100 nodes whose room changed.
//
//	go test -run '^$' -bench AllocationRound ./internal/scheduler/twolevel
func BenchmarkAllocationRound(b *testing.B) {
	for _, c := range []struct {
		name    string
		changed int
	}{{"full", 10000}, {"incremental", 100}} {
		b.Run(c.name, func(b *testing.B) {
			a := newAlloc(b, DefaultAllocatorConfig(), 1)
			const nodes = 10000
			ids := make([]string, nodes)
			for i := range nodes {
				ids[i] = fmt.Sprintf("node-%05d", i)
				a.UpsertNode(NodeInfo{ID: ids[i], Name: ids[i], Capacity: res(4000, 8192), Ready: true}, "")
				a.SetNodeUsage(ids[i], res(2000, 4096), []Use{{Framework: "batch", Resources: res(2000, 4096)}})
			}
			for _, f := range []string{"service", "batch", "ext-1", "ext-2"} {
				a.AddFramework(f, f, "")
			}
			now := t0
			a.Allocate(now)
			b.ReportAllocs()
			b.ResetTimer()
			offers := 0
			for range b.N {
				b.StopTimer()
				// Decline c.changed offers (no filter): their nodes are
				// queued for the next round.
				out := a.TakeOutputs()
				byFw := map[string][]string{}
				for _, o := range out {
					if o.Kind == OutputOffer {
						byFw[o.Framework] = append(byFw[o.Framework], o.OfferID)
					}
				}
				left := c.changed
				for f, ids := range byFw {
					k := min(left, len(ids))
					_ = a.Decline(f, ids[:k], 0, now)
					left -= k
				}
				if left > 0 { // the first iteration: offers from before
					for _, f := range a.fwList {
						var ids []string
						for id, o := range a.offers {
							if o.fw == f && left > 0 {
								ids = append(ids, id)
								left--
							}
						}
						_ = a.Decline(f.id, ids, 0, now)
					}
				}
				now = now.Add(time.Millisecond)
				b.StartTimer()
				a.Allocate(now)
				offers += len(a.out)
			}
			b.ReportMetric(float64(offers)/float64(b.N), "offers/round")
		})
	}
}
