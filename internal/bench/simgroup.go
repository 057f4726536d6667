package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// DefaultNodesPerWatch is how many simulated nodes share one watch stream,
// one reporter and one heartbeat loop.
const DefaultNodesPerWatch = 500

// maxReportBatch bounds the reports of one batched request (each is ~200
// bytes of JSON; the server takes up to 4 MiB and 16,384 reports).
const maxReportBatch = 4096

// simGroup serves many simulated nodes over three goroutines, as a host
// running many nodes would:
//
//   - watch: one stream of the multiplexed watch for all the group's
//     nodes; each frame's per-node changes go to the node's reconcile.
//   - report: sends the nodes' queued status reports, many nodes per
//     request; one request at a time, so reports queued meanwhile join
//     the next (the server group-commits them with other groups').
//   - heartbeat: renews every node's TTL in one request, every third of
//     the TTL (jittered); the server keeps a timer per node.
type simGroup struct {
	nodes []*simNode
	byID  map[string]*simNode
	poll  *api.Client // the watch stream holds a connection
	write *api.Client // reports and heartbeats share a pool
	log   *slog.Logger
	ttl   time.Duration
	rng   *rand.Rand // heartbeat goroutine only

	kick chan struct{}

	mu   sync.Mutex
	errs int // failed requests of the group (counted into the report)
}

func newSimGroup(nodes []*simNode, poll, write *api.Client, ttl time.Duration, seed uint64, log *slog.Logger) *simGroup {
	g := &simGroup{nodes: nodes, byID: make(map[string]*simNode, len(nodes)), poll: poll, write: write, log: log, ttl: ttl,
		rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), kick: make(chan struct{}, 1)}
	for _, n := range nodes {
		g.byID[n.node.ID] = n
		n.group = g
	}
	return g
}

// run serves the group's nodes until ctx ends.
func (g *simGroup) run(ctx context.Context) {
	for _, n := range g.nodes {
		n.ctx = ctx
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); g.watch(ctx) }()
	go func() { defer wg.Done(); g.heartbeat(ctx) }()
	go func() { defer wg.Done(); g.report(ctx) }()
	wg.Wait()
	for _, n := range g.nodes {
		n.detach()
	}
}

func (g *simGroup) countErr(what string, err error) {
	g.log.Warn("simulated nodes: "+what, "nodes", len(g.nodes), "err", err)
	g.mu.Lock()
	g.errs++
	g.mu.Unlock()
}

func (g *simGroup) errorCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.errs
	for _, sn := range g.nodes {
		n += sn.errorCount()
	}
	return n
}

func (g *simGroup) kickReport() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// watch keeps one watch stream open for all the group's nodes,
// reconnecting with what each node holds when it ends.
func (g *simGroup) watch(ctx context.Context) {
	for ctx.Err() == nil {
		req := &api.NodeWatchRequest{Nodes: make(map[string]api.NodeWatchState, len(g.nodes))}
		for _, n := range g.nodes {
			n.mu.Lock()
			req.Nodes[n.node.ID] = api.NodeWatchState{Index: n.watchIndex, Known: n.known()}
			n.mu.Unlock()
		}
		w, err := g.poll.WatchNodeAllocations(ctx, req, true, 5*time.Minute)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			g.countErr("opening the watch", err)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		if err := g.serveStream(ctx, w); err != nil && ctx.Err() == nil {
			g.countErr("reading the watch", err)
			sleepCtx(ctx, 100*time.Millisecond)
		}
		_ = w.Close()
	}
}

// serveStream applies a stream's frames until it ends.
func (g *simGroup) serveStream(ctx context.Context, w *api.NodeWatch) error {
	for {
		_, nodes, err := w.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		lost := false
		for id, ch := range nodes {
			n := g.byID[id]
			if n == nil {
				continue
			}
			if ch.NotFound {
				// The server forgot the node: register it again and
				// watch it anew (the stream no longer carries it).
				n.countErr()
				g.log.Warn("simulated node unknown to the server; registering it again", "node", id)
				if err := n.register(ctx); err != nil {
					return err
				}
				n.watchIndex = 0
				lost = true
				continue
			}
			n.watchIndex = ch.Index
			n.reconcile(ch.Allocs, ch.Full, w.FrameTime)
		}
		if lost {
			return nil
		}
	}
}

func (g *simGroup) heartbeat(ctx context.Context) {
	ids := make([]string, len(g.nodes))
	for i, n := range g.nodes {
		ids[i] = n.node.ID
	}
	for {
		// A third of the TTL, jittered so groups spread out.
		d := g.ttl/3 - time.Duration(g.rng.Int64N(int64(g.ttl/6)+1))
		if !sleepCtx(ctx, d) {
			return
		}
		resp, err := g.write.HeartbeatNodes(ctx, ids)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			g.countErr("heartbeat", err)
			continue
		}
		for _, id := range resp.Unknown {
			if n := g.byID[id]; n != nil {
				n.countErr()
				g.log.Warn("simulated node unknown to the server; registering it again", "node", id)
				_ = n.register(ctx)
			}
		}
	}
}

// report sends the nodes' queued reports, many nodes per request, as the
// agent's updater does for one; a failed batch is retried.
func (g *simGroup) report(ctx context.Context) {
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		}
		for {
			batch := map[string][]*structs.AllocClientUpdate{}
			taken := map[string]reports{}
			total := 0
			// Start where the last batch stopped, so no node waits
			// behind busier ones when a batch is full.
			start := next
			for i := range g.nodes {
				if total >= maxReportBatch {
					break
				}
				n := g.nodes[(start+i)%len(g.nodes)]
				next = (start + i + 1) % len(g.nodes)
				if p := n.takePending(); len(p.updates) > 0 {
					batch[n.node.ID] = p.updates
					taken[n.node.ID] = p
					total += len(p.updates)
				}
			}
			if total == 0 {
				break
			}
			resp, err := g.write.UpdateNodesAllocations(ctx, batch)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				g.countErr("reporting", err)
				var ae *api.APIError
				if errors.As(err, &ae) && ae.StatusCode/100 == 4 {
					continue // refused for good: drop, as the agent does
				}
				for id, p := range taken {
					g.byID[id].requeue(p)
				}
				if !sleepCtx(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			unknown := map[string]bool{}
			for _, id := range resp.Unknown {
				unknown[id] = true
			}
			for id, p := range taken {
				if unknown[id] {
					// Dropped: the node re-registers on its next heartbeat.
					g.byID[id].countErr()
					g.log.Warn("reports of a simulated node unknown to the server dropped", "node", id)
					continue
				}
				g.byID[id].sent(p)
			}
		}
	}
}
