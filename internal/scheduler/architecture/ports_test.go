package architecture_test

import (
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// portArchs are the architectures the port scenarios run on (two-level's
// are in its package, TestPortsOnOffers): shared-state
// with several workers, so that plans of different jobs race for the
// same ports and the applier's check must catch what the placers miss.
var portArchs = []struct {
	name string
	mod  func(*architecture.Config)
}{
	{"monolithic", func(c *architecture.Config) { c.Architecture = architecture.Monolithic }},
	{"shared-state", func(c *architecture.Config) {
		c.Architecture, c.SharedState.Workers = architecture.SharedState, 4
	}},
}

func portJob(id string, count int, ports ...structs.Port) *structs.Job {
	j := schedtest.Job(id, count, 10, 8)
	j.Network = &structs.Network{Ports: ports}
	return j
}

// TestDynamicPortsNeverCollide: 20 copies (four jobs of five) each asking
// for two dynamic ports, on three nodes whose ranges hold 15 ports each
// (45 for the 40 asked), are all placed, and no two live copies on a node
// hold the same port; every port is inside its node's range.
func TestDynamicPortsNeverCollide(t *testing.T) {
	for _, arch := range portArchs {
		t.Run(arch.name, func(t *testing.T) {
			h := schedtest.NewHarness(t)
			for i := 1; i <= 3; i++ {
				n := schedtest.Node(fmt.Sprintf("n%d", i), 100000, 100000)
				n.Attributes[structs.NodeAttrDynamicPorts] = "20000-20014"
				h.State.UpsertNode(n)
			}
			jobs := []string{"a", "b", "c", "d"}
			for _, id := range jobs {
				h.State.UpsertJob(portJob(id, 5, structs.Port{Label: "http"}, structs.Port{Label: "admin", To: 9000}))
			}
			a := build(t, h, arch.mod, nil)
			h.Run(a)
			for _, id := range jobs {
				a.Enqueue(id, 50)
			}
			h.WaitUntil("20 copies placed", func() bool {
				n := 0
				for _, id := range jobs {
					n += len(h.State.LiveAllocs(id))
				}
				return n == 20
			})
			if err := h.State.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			for _, id := range jobs {
				for _, al := range h.State.LiveAllocs(id) {
					if len(al.Ports) != 2 || al.Ports[0].Label != "http" || al.Ports[1].Label != "admin" || al.Ports[1].To != 9000 {
						t.Fatalf("%s ports = %+v", al.Name, al.Ports)
					}
					for _, p := range al.Ports {
						if p.Value < 20000 || p.Value > 20014 {
							t.Fatalf("%s: port %d outside the node's range", al.Name, p.Value)
						}
					}
				}
			}
		})
	}
}

// TestStaticPortTakenKeepsCopyPending: a static port held on every node
// leaves the copies that cannot get it pending, and "why pending" names
// the port and counts the nodes.
func TestStaticPortTakenKeepsCopyPending(t *testing.T) {
	for _, arch := range portArchs {
		t.Run(arch.name, func(t *testing.T) {
			h := schedtest.NewHarness(t)
			for i := 1; i <= 3; i++ {
				h.State.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 100000, 100000))
			}
			// Another job holds 8080 on n1 already.
			other := portJob("other", 1, structs.Port{Label: "http", Static: 8080})
			h.State.UpsertJob(other)
			held := schedtest.Alloc(other, 0, "n1")
			held.Ports = []structs.AllocPort{{Label: "http", Value: 8080}}
			h.State.UpsertAllocs(held)

			h.State.UpsertJob(portJob("web", 3, structs.Port{Label: "http", Static: 8080}))
			a := build(t, h, arch.mod, nil)
			h.Run(a)
			a.Enqueue("web", 50)
			h.WaitUntil("a placement failure for web", func() bool {
				return len(h.State.LiveAllocs("web")) == 2 && h.State.Failure("web") != nil
			})
			if err := h.State.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			f := h.State.Failure("web")
			if f.Unplaced != 1 || f.NodesExhausted[scheduler.ReasonPortTaken(8080)] != 3 {
				t.Fatalf("failure = %+v", f)
			}
			if want := "3 nodes excluded by port 8080 taken"; !containsMsg(f.Message, want) {
				t.Fatalf("message %q, want %q", f.Message, want)
			}
			for _, al := range h.State.LiveAllocs("web") {
				if al.NodeID == "n1" {
					t.Fatalf("%s placed on n1, whose port 8080 is taken", al.Name)
				}
			}
		})
	}
}

func containsMsg(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
