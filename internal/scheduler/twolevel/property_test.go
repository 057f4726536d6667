package twolevel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// oracleFill is weighted DRF by progressive filling over one pool of
// resources, written from the definition and independent of the
// allocator: repeatedly give one task to the framework whose role has the
// lowest weighted dominant share (ties: role name), then within it the
// lowest dominant share (ties: ID), among those whose next task still
// fits; stop when none fits.
func oracleFill(total structs.Resources, fws []oracleFw, weights map[string]float64) map[string]int {
	got := map[string]int{}
	free := total
	share := func(r structs.Resources) float64 {
		return max(float64(r.CPU)/float64(total.CPU), float64(r.MemoryMB)/float64(total.MemoryMB))
	}
	alloc := func(f oracleFw) structs.Resources {
		n := int64(got[f.id])
		return structs.Resources{CPU: f.shape.CPU * n, MemoryMB: f.shape.MemoryMB * n}
	}
	for {
		roleAlloc := map[string]structs.Resources{}
		for _, f := range fws {
			roleAlloc[f.role] = roleAlloc[f.role].Add(alloc(f))
		}
		best := -1
		for i, f := range fws {
			if ok, _ := free.Fits(f.shape); !ok {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			b := fws[best]
			rs, rb := share(roleAlloc[f.role])/weights[f.role], share(roleAlloc[b.role])/weights[b.role]
			switch {
			case f.role != b.role && rs != rb:
				if rs < rb {
					best = i
				}
			case f.role != b.role:
				if f.role < b.role {
					best = i
				}
			default:
				fs, bs := share(alloc(f)), share(alloc(b))
				if fs < bs || (fs == bs && f.id < b.id) {
					best = i
				}
			}
		}
		if best < 0 {
			return got
		}
		got[fws[best].id]++
		free = free.Sub(fws[best].shape)
	}
}

type oracleFw struct {
	id, role string
	shape    structs.Resources
}

// TestDRFConvergesToWeightedDRF is the property: over random frameworks,
// roles, weights and task shapes on one node, the allocator driven by
// frameworks that take one task per offer ends with exactly the
// allocation of weighted DRF's progressive filling.
func TestDRFConvergesToWeightedDRF(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 77))
			nroles := 1 + rng.IntN(4)
			cfg := DefaultAllocatorConfig()
			cfg.Roles = map[string]RoleConfig{}
			weights := map[string]float64{}
			for r := range nroles {
				name := fmt.Sprintf("r%d", r)
				w := float64(1 + rng.IntN(4))
				cfg.Roles[name] = RoleConfig{Weight: w}
				weights[name] = w
			}
			total := res(int64(4+rng.IntN(60))*1000, int64(8+rng.IntN(120))*1024)
			s := newSim(t, newAlloc(t, cfg, seed))
			s.addNode("n1", total, nil)
			var fws []oracleFw
			for i := range 2 + rng.IntN(5) {
				f := oracleFw{
					id:    fmt.Sprintf("f%d", i),
					role:  fmt.Sprintf("r%d", rng.IntN(nroles)),
					shape: res(int64(100+rng.IntN(30)*100), int64(128+rng.IntN(32)*128)),
				}
				fws = append(fws, f)
				s.addFramework(f.id, f.role, f.shape)
			}
			s.fill()
			want := oracleFill(total, fws, weights)
			for _, f := range fws {
				if s.tasks[f.id] != want[f.id] {
					t.Fatalf("framework %s (role %s, weight %g, task %s): %d tasks, weighted DRF gives %d (all: got %v want %v)",
						f.id, f.role, weights[f.role], f.shape, s.tasks[f.id], want[f.id], s.tasks, want)
				}
			}
		})
	}
}

// TestOfferInvariantsRandom: eight frameworks act at random on their
// offers (use some, decline with random filters, let them time out, use
// offers that are gone) while nodes are lost and come back, tasks end,
// frameworks suppress, revive and disconnect. After every step: no node
// is offered twice at once and no offer exceeds the node's real free
// room (sim.drain), the allocator's books balance (checkInvariants), a
// rescinded, expired, used or declined offer is refused, and every task
// launched is accounted for in its framework's usage.
func TestOfferInvariantsRandom(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { offerInvariantsRun(t, seed, 300) })
	}
}

func offerInvariantsRun(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	cfg := DefaultAllocatorConfig()
	cfg.OfferTimeout = 30 * time.Second
	cfg.Roles = map[string]RoleConfig{"a": {Weight: 2}, "b": {Quota: res(4000, 4096)}}
	cfg.ReservationLabel = "reserved"
	s := newSim(t, newAlloc(t, cfg, seed))
	for i := range 12 {
		var labels map[string]string
		if i%5 == 4 {
			labels = map[string]string{"reserved": "a"}
		}
		s.addNode(fmt.Sprintf("n%02d", i), res(int64(2+rng.IntN(8))*1000, int64(2+rng.IntN(8))*1024), labels)
	}
	roles := []string{"a", "b", "", ""}
	var fws []string
	for i := range 8 {
		id := fmt.Sprintf("fw%d", i)
		fws = append(fws, id)
		s.addFramework(id, roles[i%len(roles)], res(int64(1+rng.IntN(20))*100, int64(1+rng.IntN(16))*128))
	}
	connected := map[string]bool{}
	for _, f := range fws {
		connected[f] = true
	}
	launched, ended := map[string]int{}, map[string]int{}
	var gone []structs.Offer // offers closed: must be refused
	for step := range steps {
		s.a.Allocate(s.now)
		s.drain()
		for _, id := range slices.Sorted(mapKeys(s.offers)) {
			of, ok := s.offers[id]
			if !ok {
				continue // rescinded by an earlier action of this step
			}
			shape := s.shape[of.FrameworkID]
			switch p := rng.IntN(10); {
			case p < 4:
				fit := 0
				for r := of.Resources; ; fit++ {
					ok, _ := r.Fits(shape)
					if !ok {
						break
					}
					r = r.Sub(shape)
				}
				k := 0
				if fit > 0 {
					k = 1 + rng.IntN(fit)
				}
				if k == 0 {
					s.decline(of, time.Duration(rng.IntN(20))*time.Second)
				} else {
					if err := s.launch(of, k, time.Duration(rng.IntN(10))*time.Second); err != nil {
						t.Fatalf("step %d: launch on a live offer: %v", step, err)
					}
					launched[of.FrameworkID] += k
				}
				gone = append(gone, of)
			case p < 7:
				s.decline(of, time.Duration(rng.IntN(20))*time.Second)
				gone = append(gone, of)
			default: // hold it: it may time out
			}
		}
		// A framework tries an offer that is gone: always refused.
		if len(gone) > 0 {
			of := gone[rng.IntN(len(gone))]
			if err := s.a.Use(of.FrameworkID, of.ID, res(1, 1)); !errors.Is(err, ErrOfferNotOutstanding) {
				t.Fatalf("step %d: use of closed offer %s: %v, want ErrOfferNotOutstanding", step, of.ID, err)
			}
		}
		switch p := rng.IntN(20); {
		case p < 3: // a node is lost: its tasks are lost with it
			id := s.order[rng.IntN(len(s.order))]
			n := s.nodes[id]
			if n.ready {
				n.ready = false
				for fw, ts := range n.tasks {
					ended[fw] += len(ts)
				}
				clear(n.tasks)
				s.a.UpsertNode(NodeInfo{ID: id, Name: id, Capacity: n.capacity, Labels: n.labels}, "node down")
				s.drain()
				if _, ok := s.byNode[id]; ok {
					t.Fatalf("step %d: lost node %s still has an outstanding offer", step, id)
				}
				s.sync(id)
				s.drain()
			}
		case p < 6: // a lost node comes back
			for _, id := range s.order {
				if n := s.nodes[id]; !n.ready {
					n.ready = true
					s.a.UpsertNode(NodeInfo{ID: id, Name: id, Capacity: n.capacity, Labels: n.labels, Ready: true}, "")
					s.drain()
					break
				}
			}
		case p < 10: // tasks end
			id := s.order[rng.IntN(len(s.order))]
			n := s.nodes[id]
			for _, fw := range slices.Sorted(mapKeys(n.tasks)) {
				if ts := n.tasks[fw]; len(ts) > 0 {
					n.tasks[fw] = ts[1:]
					ended[fw]++
					break
				}
			}
			s.sync(id)
			s.drain()
		case p < 12:
			fw := fws[rng.IntN(len(fws))]
			if connected[fw] {
				_ = s.a.Suppress(fw)
			}
		case p < 15:
			fw := fws[rng.IntN(len(fws))]
			if connected[fw] {
				_ = s.a.Revive(fw)
			}
		case p < 17:
			fw := fws[rng.IntN(len(fws))]
			if connected[fw] {
				connected[fw] = false
				s.a.DeactivateFramework(fw, "framework disconnected")
			} else {
				connected[fw] = true
				s.a.AddFramework(fw, fw, s.role[fw])
			}
			s.drain()
		}
		s.now = s.now.Add(time.Duration(rng.IntN(8000)) * time.Millisecond)
		// Every task launched is accounted for: on a node of the sim,
		// and in its framework's usage with the allocator.
		for _, fw := range fws {
			live := 0
			var want structs.Resources
			for _, n := range s.nodes {
				live += len(n.tasks[fw])
				for _, r := range n.tasks[fw] {
					want = want.Add(r)
				}
			}
			if live != launched[fw]-ended[fw] {
				t.Fatalf("step %d: %s has %d live tasks, launched %d, ended %d", step, fw, live, launched[fw], ended[fw])
			}
			ff, _ := s.a.Framework(fw)
			if ff.Used != want {
				t.Fatalf("step %d: %s uses %s by the allocator, %s by its tasks", step, fw, ff.Used, want)
			}
		}
	}
	total := 0
	for _, n := range launched {
		total += n
	}
	if total == 0 {
		t.Fatal("no task was launched: the run tested nothing")
	}
}
