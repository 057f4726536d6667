package twolevel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestOfferInvariantsRacingFrameworks: eight external frameworks on their
// own goroutines race for offers (launching random tasks on some,
// declining some with random filters, holding others until they time
// out, and trying offers that are gone), while nodes go down and come
// back and the clock jumps. Checked throughout and at the end: the
// allocator's books balance and no node is offered twice at once
// (checkInvariants), no node is over-committed, every offer that was
// rescinded, expired, used or declined is refused (TASK_DROPPED), and
// every task reported launched has exactly its allocation in state and
// every framework allocation was reported launched.
func TestOfferInvariantsRacingFrameworks(t *testing.T) {
	h, s, _ := startExternal(t, func(c *Config) {
		c.Allocator.OfferTimeout = 5 * time.Second
		c.SubscriberBuffer = 1 << 14
	})
	rng := rand.New(rand.NewPCG(7, 7))
	var nodes []string
	for i := range 16 {
		id := fmt.Sprintf("n%02d", i)
		nodes = append(nodes, id)
		h.State.UpsertNode(schedtest.Node(id, int64(1+rng.IntN(8))*1000, int64(1+rng.IntN(8))*1024))
	}
	h.Run(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	launched := map[string]string{} // job ID -> allocation ID
	var violations []string
	var wg sync.WaitGroup
	for i := range 8 {
		sub := subscribe(t, h, s, structs.FrameworkInfo{Name: fmt.Sprintf("fw%d", i), FailoverTimeout: 3600})
		wg.Go(func() {
			defer sub.Close()
			frng := rand.New(rand.NewPCG(uint64(i), 11))
			var fw string
			var gone []structs.Offer
			nextTask := 0
			accept := func(of structs.Offer, tasks []structs.TaskInfo) []structs.TaskStatus {
				refuse := float64(frng.IntN(3))
				st, err := s.Accept(ctx, sub.StreamID, launchCall(fw, []string{of.ID}, refuse, tasks...))
				if err != nil {
					return nil // this framework's run is over (ctx)
				}
				return st
			}
			for {
				var ev structs.FrameworkEvent
				select {
				case <-ctx.Done():
					return
				case ev = <-sub.Events():
				}
				switch ev.Type {
				case structs.EventTypeSubscribed:
					fw = ev.Subscribed.FrameworkID
				case structs.EventTypeRescind:
					gone = append(gone, structs.Offer{ID: ev.Rescind.OfferID})
				case structs.EventTypeOffers:
					for _, of := range ev.Offers.Offers {
						switch p := frng.IntN(10); {
						case p < 4:
							var tasks []structs.TaskInfo
							left := of.Resources
							for k := frng.IntN(4); k >= 0; k-- {
								ask := res(int64(1+frng.IntN(10))*100, int64(1+frng.IntN(8))*128)
								if ok, _ := left.Fits(ask); !ok {
									break
								}
								left = left.Sub(ask)
								nextTask++
								tasks = append(tasks, taskInfo(fmt.Sprintf("t%d", nextTask), of.AgentID, ask.CPU, ask.MemoryMB))
							}
							for _, st := range accept(of, tasks) {
								if st.State == structs.TaskStaging {
									mu.Lock()
									launched[structs.TaskJobID(fmt.Sprintf("fw%d", i), st.TaskID)] = st.AllocID
									mu.Unlock()
								}
							}
							gone = append(gone, of)
						case p < 7:
							refuse := float64(frng.IntN(3))
							_ = s.Call(ctx, sub.StreamID, &structs.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeDecline,
								Decline: &structs.CallDecline{OfferIDs: []string{of.ID}, Filters: &structs.Filters{RefuseSeconds: &refuse}}})
							gone = append(gone, of)
						default: // hold it until it times out or is rescinded
						}
					}
					if len(gone) > 0 && frng.IntN(3) == 0 {
						of := gone[frng.IntN(len(gone))]
						nextTask++
						st := accept(of, []structs.TaskInfo{taskInfo(fmt.Sprintf("t%d", nextTask), "n00", 100, 64)})
						if len(st) == 1 && st[0].State != structs.TaskDropped {
							mu.Lock()
							violations = append(violations, fmt.Sprintf("%s launched on offer %s that was gone: %+v", fw, of.ID, st[0]))
							mu.Unlock()
						}
					}
				}
			}
		})
	}

	for step := range 300 {
		time.Sleep(time.Millisecond)
		switch p := rng.IntN(20); {
		case p < 2: // a node goes down; the server enqueues its jobs
			id := nodes[rng.IntN(len(nodes))]
			_ = h.State.SetNodeStatus(id, structs.NodeStatusDown)
			for _, a := range h.State.Snapshot().AllocsByNode(id) {
				s.Enqueue(a.JobID, 50)
			}
		case p < 5: // and comes back
			_ = h.State.SetNodeStatus(nodes[rng.IntN(len(nodes))], structs.NodeStatusReady)
		case p < 8: // tasks end
			snap := h.State.Snapshot()
			id := nodes[rng.IntN(len(nodes))]
			var reports []*structs.AllocClientUpdate
			for _, a := range snap.AllocsByNode(id) {
				if !a.Terminal() && rng.IntN(2) == 0 {
					_ = h.State.SetClientStatus(a.ID, structs.AllocClientComplete)
					reports = append(reports, &structs.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientComplete})
				}
			}
			s.AllocsReported([]structs.AllocClientUpdateRequest{{NodeID: id, Updates: reports}})
		case p < 11:
			h.Clock.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
		}
		s.poke()
		if step%10 == 0 {
			invariants(t, s, h)
		}
	}
	cancel()
	wg.Wait()
	invariants(t, s, h)
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("%d offers used after they were gone:\n%s", len(violations), strings.Join(violations, "\n"))
	}
	if len(launched) == 0 {
		t.Fatal("no task launched: the run tested nothing")
	}
	snap := h.State.Snapshot()
	for jobID, allocID := range launched {
		as := snap.AllocsByJob(jobID)
		if len(as) != 1 || as[0].ID != allocID {
			t.Errorf("task %s reported launched as %s, state holds %d allocations", jobID, allocID, len(as))
		}
	}
	for _, n := range snap.Nodes() {
		for _, a := range snap.AllocsByNode(n.ID) {
			if _, ok := launched[a.JobID]; !ok {
				t.Errorf("allocation %s of %s was never reported launched", a.ID, a.JobID)
			}
		}
	}
	st := s.Status()
	if st.Rescinds == 0 || st.OffersExpired == 0 || st.Declines == 0 {
		t.Errorf("status %+v: the run should see rescinds, expiries and declines", st)
	}
}
