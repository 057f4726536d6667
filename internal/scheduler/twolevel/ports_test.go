package twolevel

import (
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestPortsOnOffers: the built-in frameworks place copies that ask for
// dynamic ports through the core's placement, so 20 copies on three
// nodes get ports that never collide; a static port held on one node
// keeps the copies off it.
func TestPortsOnOffers(t *testing.T) {
	h := schedtest.NewHarness(t)
	for i := 1; i <= 3; i++ {
		n := schedtest.Node(fmt.Sprintf("n%d", i), 100000, 100000)
		n.Attributes[structs.NodeAttrDynamicPorts] = "20000-20014"
		h.State.UpsertNode(n)
	}
	jobs := []string{"a", "b", "c", "d"}
	for _, id := range jobs {
		j := schedtest.Job(id, 5, 10, 8)
		j.Network = &structs.Network{Ports: []structs.Port{{Label: "http"}, {Label: "admin"}}}
		h.State.UpsertJob(j)
	}
	static := schedtest.Job("web", 3, 10, 8)
	static.Network = &structs.Network{Ports: []structs.Port{{Label: "http", Static: 8080}}}
	h.State.UpsertJob(static)
	s := newTwoLevel(t, h, nil)
	h.Run(s)
	for _, id := range append(jobs, "web") {
		s.Enqueue(id, 50)
	}
	h.WaitUntil("every copy placed", func() bool {
		n := 0
		for _, id := range jobs {
			n += len(h.State.LiveAllocs(id))
		}
		return n == 20 && len(h.State.LiveAllocs("web")) == 3
	})
	h.WaitUntil("offers returned", func() bool { return s.Status().OffersOutstanding == 0 })
	invariants(t, s, h) // includes: no host port held twice on a node
	nodes := map[string]bool{}
	for _, a := range h.State.LiveAllocs("web") {
		nodes[a.NodeID] = true
	}
	if len(nodes) != 3 {
		t.Fatalf("the static-port copies share a node: %v", nodes)
	}
}
