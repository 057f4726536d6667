package server

import (
	"context"
	"slices"
	"sync"

	"github.com/gantry-project/gantry/internal/structs"
)

// maxBatchUpdates bounds the reports in one Raft entry. A running report
// (two task events) is ~50 bytes in the binary entry
// (structs.EncodeReportBatch; ~450 as JSON), so an entry stays under 1 MB;
// the bound is also what one go-memdb transaction of the FSM changes.
const maxBatchUpdates = 16384

// updateBatcher coalesces agents' status reports into one Raft entry per
// batch (group commit): while one batch is being applied, reports from
// every node queue into the next. Under load, thousands of nodes reporting
// at once cost a handful of Raft entries instead of one each, and plans no
// longer queue behind them in the log. An idle server applies a lone
// report at once, so a quiet cluster sees no added latency.
//
// A flush goroutine runs only while batches are queued; it ends when the
// queue is empty (so nothing outlives Shutdown: raftApply fails fast then).
type updateBatcher struct {
	s *Server

	mu       sync.Mutex
	queue    []*updateBatch // guarded by mu
	flushing bool           // guarded by mu
}

type updateBatch struct {
	req   structs.AllocClientUpdateBatchRequest
	n     int // reports in req
	done  chan struct{}
	index uint64
	err   error
}

// submit queues one node's reports and waits until the batch holding them
// is applied (or ctx ends; the reports are applied anyway).
func (b *updateBatcher) submit(ctx context.Context, req structs.AllocClientUpdateRequest) (uint64, error) {
	return b.submitAll(ctx, []structs.AllocClientUpdateRequest{req})
}

// submitAll queues several nodes' reports (one request of
// POST /v1/nodes/allocations) into the same batch and waits until it is
// applied (or ctx ends; the reports are applied anyway).
func (b *updateBatcher) submitAll(ctx context.Context, reqs []structs.AllocClientUpdateRequest) (uint64, error) {
	n := 0
	for _, r := range reqs {
		n += len(r.Updates)
	}
	b.mu.Lock()
	var bt *updateBatch
	if q := len(b.queue); q > 0 && b.queue[q-1].n+n <= maxBatchUpdates {
		bt = b.queue[q-1]
	} else {
		bt = &updateBatch{done: make(chan struct{})}
		b.queue = append(b.queue, bt)
	}
	bt.req.Nodes = append(bt.req.Nodes, reqs...)
	bt.n += n
	if !b.flushing {
		b.flushing = true
		b.s.wg.Add(1)
		go b.flush()
	}
	b.mu.Unlock()
	select {
	case <-bt.done:
		return bt.index, bt.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *updateBatcher) flush() {
	defer b.s.wg.Done()
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		bt := b.queue[0]
		b.queue = b.queue[1:]
		b.mu.Unlock()

		index, resp, err := b.s.raftApply(structs.AllocClientUpdateBatchRequestType, &bt.req)
		bt.index, bt.err = index, err
		close(bt.done)
		if err == nil {
			b.s.allocsReported(bt.req.Nodes)
		}
		if res, ok := resp.(*fsmResult); ok && err == nil {
			// Ended allocations free room on their nodes: the blocked
			// jobs those nodes admit are enqueued (blocked.go).
			if len(res.terminal) > 0 {
				nodes := make([]string, 0, len(res.terminal))
				for _, a := range res.terminal {
					if k := len(nodes); k == 0 || nodes[k-1] != a.NodeID {
						nodes = append(nodes, a.NodeID)
					}
				}
				b.s.blocked.roomGrew(index, nodes...)
			}
			seen := map[string]bool{}
			var namespaces []string
			for _, a := range res.terminal {
				if !seen[a.JobID] {
					seen[a.JobID] = true
					b.s.enqueueJob(a.JobID)
					if ns := structs.JobNamespace(a.JobID); !slices.Contains(namespaces, ns) {
						namespaces = append(namespaces, ns)
					}
				}
			}
			// Ended allocations free room under their namespaces' quotas.
			for _, ns := range namespaces {
				b.s.enqueueQuotaBlocked(ns)
			}
		}
	}
}
