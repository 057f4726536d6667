package bench

import (
	"context"
	"fmt"
	"sync"

	"github.com/gantry-project/gantry/internal/structs"
)

// CheckResult is the verdict over the server's final state.
type CheckResult struct {
	OK     bool `json:"ok"`
	Nodes  int  `json:"nodes"`
	Allocs int  `json:"allocs"`
	// Overcommitted counts nodes whose live allocations exceed capacity.
	Overcommitted int `json:"overcommitted_nodes"`
	// Duplicates counts task copies (job, index) held by more than one
	// allocation that is running, pending or completed.
	Duplicates int `json:"duplicates"`
	// RanTwice counts, of the duplicates, copies whose task ran to
	// completion twice (a batch copy run again; peer runs).
	RanTwice int `json:"ran_twice,omitempty"`
	// Replaced counts allocations that hold no copy at the end: stopped,
	// killed, failed or lost, a copy placed again or an extra stopped
	// (peer runs).
	Replaced int `json:"replaced,omitempty"`
	// Missing counts task copies with no such allocation.
	Missing int `json:"missing"`
	// Unknown counts allocations of jobs the workload did not submit or
	// with indexes outside the job's count.
	Unknown int `json:"unknown"`
	// NotOnServer counts copies the simulated nodes received that the
	// server's final state does not hold (acknowledged work lost).
	NotOnServer int `json:"not_on_server"`
	// MaxNodeAllocs is the most allocations on one node (bin-packing
	// concentrates them; per-node costs grow with it).
	MaxNodeAllocs int      `json:"max_node_allocs"`
	Problems      []string `json:"problems,omitempty"`
}

// checker accumulates the final-state check node by node. Safe for
// concurrent addNode calls.
type checker struct {
	w    *Workload
	rec  *recorder
	mu   sync.Mutex
	res  CheckResult
	held map[string][]int // job -> per index, allocations holding the copy
}

func newChecker(w *Workload, rec *recorder) *checker {
	c := &checker{w: w, rec: rec, held: map[string][]int{}}
	for id, t := range rec.jobs {
		c.held[id] = make([]int, t.count)
	}
	return c
}

func (c *checker) problem(format string, args ...any) {
	if len(c.res.Problems) < 20 {
		c.res.Problems = append(c.res.Problems, fmt.Sprintf(format, args...))
	}
}

// addNode checks one node's allocations against its capacity and counts
// the task copies they hold.
func (c *checker) addNode(n *structs.Node, allocs []*structs.Allocation) {
	var used structs.Resources
	for _, a := range allocs {
		if !a.Terminal() {
			used = used.Add(a.Resources)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res.Nodes++
	c.res.Allocs += len(allocs)
	c.res.MaxNodeAllocs = max(c.res.MaxNodeAllocs, len(allocs))
	if ok, dim := n.Capacity.Fits(used); !ok {
		c.res.Overcommitted++
		c.problem("node %s over-committed on %s: uses %s of %s", n.Name, dim, used, n.Capacity)
	}
	for _, a := range allocs {
		if a.DesiredStatus != structs.AllocDesiredRun ||
			a.ClientStatus == structs.AllocClientFailed || a.ClientStatus == structs.AllocClientLost {
			continue // stopped, evicted or failed: does not hold the copy
		}
		h, ok := c.held[a.JobID]
		if !ok || a.Index < 0 || a.Index >= len(h) {
			c.res.Unknown++
			c.problem("allocation %s (%s) is not part of the workload", a.ID, a.Name)
			continue
		}
		h[a.Index]++
	}
}

// finish counts duplicates and missing copies and gives the verdict.
func (c *checker) finish() *CheckResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := &c.res
	preempting := c.w.hasPreemption()
	for id, h := range c.held {
		t := c.rec.jobs[id]
		t.mu.Lock()
		for i, n := range h {
			switch {
			case n > 1:
				res.Duplicates++
				c.problem("task %s placed %d times", structs.AllocName(id, i), n)
			case n == 0:
				res.Missing++
				// Without preemption nothing the server placed is ever
				// taken back in these workloads: a copy a node received
				// must still be held.
				if t.placed[i] && !preempting {
					res.NotOnServer++
					c.problem("task %s was received by a node but is not on the server", structs.AllocName(id, i))
				}
			}
		}
		t.mu.Unlock()
	}
	res.OK = res.Overcommitted == 0 && res.Duplicates == 0 && res.Unknown == 0 && res.NotOnServer == 0 &&
		(res.Missing == 0 || c.w.ExpectUnplaced)
	out := *res
	return &out
}

// checkFinalState reads every node's allocations through the agent
// endpoint and checks the invariants.
func (r *runner) checkFinalState(ctx context.Context) (*CheckResult, error) {
	nodes, _, err := r.ctl.ListNodes(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	chk := newChecker(r.w, r.rec)
	work := make(chan *structs.Node)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				allocs, _, err := r.ctl.NodeAllocations(ctx, n.ID, nil)
				if err != nil {
					select {
					case errc <- fmt.Errorf("allocations of node %s: %w", n.Name, err):
					default:
					}
					continue
				}
				chk.addNode(n, allocs)
			}
		}()
	}
	for _, n := range nodes {
		select {
		case work <- n:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return chk.finish(), nil
}

// hasPreemption reports whether jobs of different priorities compete, in
// which case a received copy may rightly have been evicted since.
func (w *Workload) hasPreemption() bool {
	prio := -1
	for _, g := range w.Jobs {
		if prio >= 0 && g.Priority != prio {
			return true
		}
		prio = g.Priority
	}
	return false
}
