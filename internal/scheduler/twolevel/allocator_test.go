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

var t0 = time.Unix(1_800_000_000, 0)

func res(cpu, mem int64) structs.Resources { return structs.Resources{CPU: cpu, MemoryMB: mem} }

func newAlloc(t testing.TB, cfg AllocatorConfig, seed uint64) *Allocator {
	t.Helper()
	a, err := NewAllocator(cfg, rand.New(rand.NewPCG(seed, seed^0x5eed)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sim drives an allocator the way the architecture does, over a state of
// its own: frameworks launch tasks of one shape on their offers, the
// "applier" refuses what does not fit the node, and usage goes back to
// the allocator after each launch.
type sim struct {
	t     testing.TB
	a     *Allocator
	now   time.Time
	nodes map[string]*simNode
	order []string
	// outstanding offers as the frameworks see them (from outputs).
	offers map[string]structs.Offer
	// byNode: the outstanding offer of each node, from outputs.
	byNode map[string]string
	tasks  map[string]int // per framework, tasks launched and live
	shape  map[string]structs.Resources
	role   map[string]string
}

type simNode struct {
	capacity structs.Resources
	ready    bool
	labels   map[string]string
	tasks    map[string][]structs.Resources // per framework
}

func newSim(t testing.TB, a *Allocator) *sim {
	return &sim{t: t, a: a, now: t0, nodes: map[string]*simNode{}, offers: map[string]structs.Offer{},
		byNode: map[string]string{}, tasks: map[string]int{}, shape: map[string]structs.Resources{}, role: map[string]string{}}
}

func (s *sim) addNode(id string, capacity structs.Resources, labels map[string]string) {
	s.nodes[id] = &simNode{capacity: capacity, ready: true, labels: labels, tasks: map[string][]structs.Resources{}}
	s.order = append(s.order, id)
	s.a.UpsertNode(NodeInfo{ID: id, Name: id, Capacity: capacity, Labels: labels, Ready: true}, "")
	s.drain()
}

func (s *sim) addFramework(id, role string, shape structs.Resources) {
	s.shape[id], s.role[id] = shape, role
	s.a.AddFramework(id, id, role)
}

// drain reads the allocator's outputs and checks the offer invariants as
// the frameworks see them: an offer is new, its node has no other
// outstanding offer, and it fits the node's free room in the sim's state.
func (s *sim) drain() []Output {
	s.t.Helper()
	out := s.a.TakeOutputs()
	for _, o := range out {
		switch o.Kind {
		case OutputOffer:
			of := o.Wire()
			if _, dup := s.offers[of.ID]; dup {
				s.t.Fatalf("offer %s sent twice", of.ID)
			}
			if prev, busy := s.byNode[of.AgentID]; busy {
				s.t.Fatalf("node %s offered to %s while offer %s (to %s) is outstanding", of.AgentID, of.FrameworkID, prev, s.offers[prev].FrameworkID)
			}
			n := s.nodes[of.AgentID]
			if ok, _ := n.free().Fits(of.Resources); !ok || !n.ready {
				s.t.Fatalf("offer %s of %s on %s exceeds its free room %s (ready %v)", of.ID, of.Resources, of.AgentID, n.free(), n.ready)
			}
			s.offers[of.ID] = of
			s.byNode[of.AgentID] = of.ID
		case OutputRescind:
			of, ok := s.offers[o.OfferID]
			if !ok {
				s.t.Fatalf("rescind of unknown offer %s", o.OfferID)
			}
			s.forget(of)
		}
	}
	if err := s.a.checkInvariants(); err != nil {
		s.t.Fatalf("invariants: %v", err)
	}
	return out
}

func (s *sim) forget(of structs.Offer) {
	delete(s.offers, of.ID)
	if s.byNode[of.AgentID] == of.ID {
		delete(s.byNode, of.AgentID)
	}
}

func (n *simNode) used() structs.Resources {
	var u structs.Resources
	for _, ts := range n.tasks {
		for _, r := range ts {
			u = u.Add(r)
		}
	}
	return u
}

func (n *simNode) free() structs.Resources { return n.capacity.Sub(n.used()) }

// sync sends a node's usage to the allocator.
func (s *sim) sync(id string) {
	n := s.nodes[id]
	var by []Use
	for _, fw := range slices.Sorted(mapKeys(n.tasks)) {
		var r structs.Resources
		for _, x := range n.tasks[fw] {
			r = r.Add(x)
		}
		if !r.IsZero() {
			by = append(by, Use{Framework: fw, Role: s.role[fw], Resources: r})
		}
	}
	s.a.SetNodeUsage(id, n.used(), by)
}

// launch uses an offer for n tasks of fw's shape; the applier places them
// only if the node's real free room holds them (it always should).
func (s *sim) launch(of structs.Offer, n int, refuse time.Duration) error {
	s.t.Helper()
	shape := s.shape[of.FrameworkID]
	ask := structs.Resources{CPU: shape.CPU * int64(n), MemoryMB: shape.MemoryMB * int64(n)}
	if err := s.a.Use(of.FrameworkID, of.ID, ask); err != nil {
		return err
	}
	node := s.nodes[of.AgentID]
	if ok, _ := node.free().Fits(ask); !ok {
		s.t.Fatalf("applier: %d tasks of %s on %s do not fit its free room %s: the offer over-committed", n, of.FrameworkID, of.AgentID, node.free())
	}
	for range n {
		node.tasks[of.FrameworkID] = append(node.tasks[of.FrameworkID], shape)
		s.tasks[of.FrameworkID]++
	}
	if err := s.a.Accept(of.FrameworkID, []string{of.ID}, refuse, s.now); err != nil {
		s.t.Fatalf("accept after use: %v", err)
	}
	s.forget(of)
	s.a.Settle(of.FrameworkID, of.AgentID, ask)
	s.sync(of.AgentID)
	s.drain()
	return nil
}

func (s *sim) decline(of structs.Offer, refuse time.Duration) {
	s.t.Helper()
	if err := s.a.Decline(of.FrameworkID, []string{of.ID}, refuse, s.now); err != nil {
		s.t.Fatalf("decline: %v", err)
	}
	s.forget(of)
	s.drain()
}

// fill runs rounds in which every framework launches one task per offer
// when it fits (declining the rest with no filter) and declines offers it
// cannot use with a long filter, until no offer is made: DRF's
// progressive filling. It returns the launches in order.
func (s *sim) fill() []string {
	s.t.Helper()
	var launched []string
	for round := 0; ; round++ {
		if round > 100000 {
			s.t.Fatal("progressive filling does not end")
		}
		s.a.Allocate(s.now)
		s.drain()
		if len(s.offers) == 0 {
			return launched
		}
		for _, id := range slices.Sorted(mapKeys(s.offers)) {
			of := s.offers[id]
			if ok, _ := of.Resources.Fits(s.shape[of.FrameworkID]); ok {
				if err := s.launch(of, 1, 0); err != nil {
					s.t.Fatal(err)
				}
				launched = append(launched, of.FrameworkID)
				continue
			}
			s.decline(of, time.Hour)
		}
	}
}

// TestDRFPaperExample is the worked example of the DRF paper (Ghodsi et
// al., NSDI 2011): 9 CPUs and 18 GB; A's tasks need <1 CPU, 4 GB>, B's
// <3 CPU, 1 GB>. DRF gives A three tasks and B two, equalising their
// dominant shares (memory for A, CPU for B) at 2/3.
func TestDRFPaperExample(t *testing.T) {
	s := newSim(t, newAlloc(t, DefaultAllocatorConfig(), 1))
	s.addNode("n1", res(9000, 18*1024), nil)
	s.addFramework("A", "", res(1000, 4*1024))
	s.addFramework("B", "", res(3000, 1024))
	order := s.fill()
	if s.tasks["A"] != 3 || s.tasks["B"] != 2 {
		t.Fatalf("A %d tasks, B %d; want 3 and 2 (order %v)", s.tasks["A"], s.tasks["B"], order)
	}
	// Progressive filling alternates by the lower share: A B A B A.
	if want := []string{"A", "B", "A", "B", "A"}; !slices.Equal(order, want) {
		t.Fatalf("launch order %v, want %v", order, want)
	}
	fa, _ := s.a.Framework("A")
	fb, _ := s.a.Framework("B")
	if fa.DominantShare < 0.66 || fa.DominantShare > 0.67 || fb.DominantShare < 0.66 || fb.DominantShare > 0.67 {
		t.Fatalf("dominant shares A %.3f B %.3f, want 2/3 each", fa.DominantShare, fb.DominantShare)
	}
}

// TestWeightedDRF: a role of weight 2 gets twice the dominant share.
func TestWeightedDRF(t *testing.T) {
	cases := []struct {
		name       string
		wA, wB     float64
		wantA, wtB int
	}{
		{"equal", 1, 1, 6, 6},
		{"two to one", 1, 2, 4, 8},
		{"three to one", 3, 1, 9, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultAllocatorConfig()
			cfg.Roles = map[string]RoleConfig{"ra": {Weight: c.wA}, "rb": {Weight: c.wB}}
			s := newSim(t, newAlloc(t, cfg, 2))
			s.addNode("n1", res(12000, 12*1024), nil)
			s.addFramework("A", "ra", res(1000, 1024))
			s.addFramework("B", "rb", res(1000, 1024))
			s.fill()
			if s.tasks["A"] != c.wantA || s.tasks["B"] != c.wtB {
				t.Fatalf("A %d, B %d; want %d and %d", s.tasks["A"], s.tasks["B"], c.wantA, c.wtB)
			}
		})
	}
}

// TestQuotaHeadroom: a role's quota is held back from other roles even
// before the role has a framework, and its framework gets it first.
func TestQuotaHeadroom(t *testing.T) {
	cfg := DefaultAllocatorConfig()
	cfg.Roles = map[string]RoleConfig{"q": {Quota: res(4000, 0)}}
	s := newSim(t, newAlloc(t, cfg, 3))
	for i := range 10 {
		s.addNode(fmt.Sprintf("n%02d", i), res(1000, 1024), nil)
	}
	s.addFramework("greedy", "", res(1000, 1024))
	s.fill()
	if s.tasks["greedy"] != 6 {
		t.Fatalf("greedy has %d tasks, want 6: 4 nodes are the headroom of role q's quota", s.tasks["greedy"])
	}
	s.addFramework("Q", "q", res(1000, 1024))
	s.fill()
	if s.tasks["Q"] != 4 {
		t.Fatalf("Q has %d tasks, want its quota of 4", s.tasks["Q"])
	}
}

// TestQuotaFirst: a role below its quota is offered before a role with a
// lower share.
func TestQuotaFirst(t *testing.T) {
	cfg := DefaultAllocatorConfig()
	cfg.Roles = map[string]RoleConfig{"q": {Quota: res(2000, 0)}}
	s := newSim(t, newAlloc(t, cfg, 4))
	s.addNode("n1", res(4000, 4096), nil)
	s.addFramework("Q", "q", res(1000, 1024))
	s.addFramework("X", "", res(1000, 1024))
	// Give Q one task so its share is above X's.
	s.a.Allocate(s.now)
	s.drain()
	for _, of := range s.offers {
		if of.FrameworkID != "Q" {
			t.Fatalf("first offer went to %s, want Q (below quota)", of.FrameworkID)
		}
		if err := s.launch(of, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.a.Allocate(s.now)
	s.drain()
	for _, of := range s.offers {
		if of.FrameworkID != "Q" {
			t.Fatalf("second offer went to %s, want Q: still below its quota of 2 CPUs although its share is higher", of.FrameworkID)
		}
	}
}

// TestReservation: a node labelled for a role is offered only to that
// role's frameworks.
func TestReservation(t *testing.T) {
	cfg := DefaultAllocatorConfig()
	cfg.ReservationLabel = "reserved"
	s := newSim(t, newAlloc(t, cfg, 5))
	s.addNode("gpu1", res(4000, 4096), map[string]string{"reserved": "ml"})
	s.addNode("n1", res(4000, 4096), nil)
	s.addFramework("web", "", res(1000, 1024))
	s.a.Allocate(s.now)
	s.drain()
	if len(s.offers) != 1 || s.byNode["n1"] == "" {
		t.Fatalf("offers %v, want only n1 offered to web", s.offers)
	}
	s.addFramework("trainer", "ml", res(1000, 1024))
	s.a.Allocate(s.now)
	s.drain()
	id := s.byNode["gpu1"]
	if id == "" || s.offers[id].FrameworkID != "trainer" || s.offers[id].Role != "ml" {
		t.Fatalf("gpu1 offer %+v, want it offered to trainer with role ml", s.offers[id])
	}
}

// TestDeclineFilter: declined resources are not offered to the same
// framework again until the filter lapses, unless the node has more room
// than was refused; other frameworks may get them at once.
func TestDeclineFilter(t *testing.T) {
	s := newSim(t, newAlloc(t, DefaultAllocatorConfig(), 6))
	s.addNode("n1", res(4000, 4096), nil)
	s.addFramework("A", "", res(1000, 1024))
	s.a.Allocate(s.now)
	s.drain()
	of := s.offers[s.byNode["n1"]]
	s.decline(of, 10*time.Second)
	s.now = s.now.Add(5 * time.Second)
	s.a.Allocate(s.now)
	s.drain()
	if len(s.offers) != 0 {
		t.Fatalf("re-offered within the filter: %v", s.offers)
	}
	s.addFramework("B", "", res(1000, 1024))
	s.a.Allocate(s.now)
	s.drain()
	if id := s.byNode["n1"]; id == "" || s.offers[id].FrameworkID != "B" {
		t.Fatalf("n1 not offered to B: %v", s.offers)
	}
	s.decline(s.offers[s.byNode["n1"]], 0)
	// B got no filter; make A's filter matter: suppress B.
	if err := s.a.Suppress("B"); err != nil {
		t.Fatal(err)
	}
	s.a.Allocate(s.now)
	s.drain()
	if len(s.offers) != 0 {
		t.Fatalf("A re-offered within its filter: %v", s.offers)
	}
	s.now = s.now.Add(6 * time.Second) // past the filter
	if d, ok := s.a.NextDeadline(); ok && d.After(s.now) {
		t.Fatalf("next deadline %v after the filter's end", d)
	}
	s.a.Allocate(s.now)
	s.drain()
	if id := s.byNode["n1"]; id == "" || s.offers[id].FrameworkID != "A" {
		t.Fatalf("n1 not offered to A after its filter lapsed: %v", s.offers)
	}
}

// TestFilterLiftsWhenRoomGrows: a filter covers only what was refused.
func TestFilterLiftsWhenRoomGrows(t *testing.T) {
	s := newSim(t, newAlloc(t, DefaultAllocatorConfig(), 7))
	s.addNode("n1", res(4000, 4096), nil)
	s.addFramework("A", "", res(3000, 3072))
	s.addFramework("B", "", res(2000, 2048))
	if err := s.a.Suppress("A"); err != nil {
		t.Fatal(err)
	}
	s.a.Allocate(s.now)
	s.drain()
	if err := s.launch(s.offers[s.byNode["n1"]], 1, 0); err != nil { // B: 2 CPU
		t.Fatal(err)
	}
	if err := s.a.Revive("A"); err != nil {
		t.Fatal(err)
	}
	if err := s.a.Suppress("B"); err != nil {
		t.Fatal(err)
	}
	s.a.Allocate(s.now)
	s.drain()
	s.decline(s.offers[s.byNode["n1"]], time.Hour) // A: 2 CPU left, too small
	// B's task ends: 4 CPUs free, more than A refused.
	s.nodes["n1"].tasks["B"] = nil
	s.tasks["B"] = 0
	s.sync("n1")
	s.a.Allocate(s.now)
	s.drain()
	if id := s.byNode["n1"]; id == "" || s.offers[id].FrameworkID != "A" || s.offers[id].Resources != res(4000, 4096) {
		t.Fatalf("offers %v, want all of n1 offered to A again", s.offers)
	}
}

// TestRescinds: an offer is rescinded when it times out, its node is lost
// or drained, its resources are used by others, or its framework
// disconnects; a rescinded offer cannot be used or declined.
func TestRescinds(t *testing.T) {
	cases := []struct {
		name    string
		do      func(s *sim)
		expired bool
	}{
		{"timeout", func(s *sim) { s.now = s.now.Add(31 * time.Second); s.a.Allocate(s.now) }, true},
		{"node lost", func(s *sim) {
			s.nodes["n1"].ready = false
			s.a.UpsertNode(NodeInfo{ID: "n1", Name: "n1", Capacity: res(4000, 4096)}, "node down")
		}, false},
		{"node removed", func(s *sim) { s.a.RemoveNode("n1", "node removed") }, false},
		{"usage grew", func(s *sim) {
			s.nodes["n1"].tasks["other"] = []structs.Resources{res(1000, 0)}
			s.sync("n1")
		}, false},
		{"framework disconnected", func(s *sim) { s.a.DeactivateFramework("A", "framework disconnected") }, false},
		{"framework removed", func(s *sim) { s.a.RemoveFramework("A", "framework removed") }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, newAlloc(t, DefaultAllocatorConfig(), 8))
			s.addNode("n1", res(4000, 4096), nil)
			s.addFramework("A", "", res(1000, 1024))
			s.a.Allocate(s.now)
			s.drain()
			of := s.offers[s.byNode["n1"]]
			c.do(s)
			var rescinded *Output
			for _, o := range s.drain() {
				if o.Kind == OutputRescind && o.OfferID == of.ID {
					rescinded = &o
				}
			}
			if rescinded == nil {
				t.Fatal("offer not rescinded")
			}
			if rescinded.Expired != c.expired || rescinded.Reason == "" {
				t.Fatalf("rescind %+v, want expired=%v and a reason", rescinded, c.expired)
			}
			if err := s.a.Use("A", of.ID, res(1000, 1024)); !errors.Is(err, ErrOfferNotOutstanding) {
				t.Fatalf("use of a rescinded offer: %v, want ErrOfferNotOutstanding", err)
			}
			if err := s.a.Decline("A", []string{of.ID}, 0, s.now); !errors.Is(err, ErrOfferNotOutstanding) {
				t.Fatalf("decline of a rescinded offer: %v, want ErrOfferNotOutstanding", err)
			}
		})
	}
}

// TestUseChecks: an offer can only be used by its framework, within its
// resources.
func TestUseChecks(t *testing.T) {
	s := newSim(t, newAlloc(t, DefaultAllocatorConfig(), 9))
	s.addNode("n1", res(4000, 4096), nil)
	s.addFramework("A", "", res(1000, 1024))
	s.addFramework("B", "", res(1000, 1024))
	s.a.Allocate(s.now)
	s.drain()
	of := s.offers[s.byNode["n1"]]
	other := "A"
	if of.FrameworkID == "A" {
		other = "B"
	}
	if err := s.a.Use(other, of.ID, res(1, 1)); !errors.Is(err, ErrOfferNotOutstanding) {
		t.Fatalf("another framework used the offer: %v", err)
	}
	if err := s.a.Use(of.FrameworkID, of.ID, res(5000, 1)); !errors.Is(err, ErrOfferExceeded) {
		t.Fatalf("used more than offered: %v", err)
	}
	if err := s.a.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}
