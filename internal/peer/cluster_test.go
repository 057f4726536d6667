package peer

import (
	"fmt"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func startTestCluster(t *testing.T, i int, dir string) *Cluster {
	t.Helper()
	cfg := DefaultConfig("", fmt.Sprintf("127.0.0.1:%d", 7000+i))
	c, err := StartCluster(ClusterConfig{
		Node: cfg, BindAddr: "127.0.0.1", BusPort: 0, DataDir: dir,
		Logger: log.New(tlog{t}, fmt.Sprintf("n%d ", i), log.Lmicroseconds),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verifyNoLeaks waits up to 15 s for goroutines to end: after Shutdown,
// memberlist's probe and indirect-ping goroutines finish on their own
// timers (ProbeTimeout), longer than goleak's own retries on a busy machine.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := goleak.Find()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Error(err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func busAddr(c *Cluster) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.BusPort())) }

// TestClusterOverMemberlist runs four peers on loopback with real
// memberlist gossip: they form a 3-primary cluster with one replica, the
// replica takes over when its primary stops, and the stopped primary comes
// back from its data dir as a replica of the new one.
func TestClusterOverMemberlist(t *testing.T) {
	defer verifyNoLeaks(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()}
	cs := make([]*Cluster, 4)
	for i := range cs {
		cs[i] = startTestCluster(t, i, dirs[i])
	}
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := 1; i < 4; i++ {
		if err := cs[i].Join([]string{busAddr(cs[0])}); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]NodeID, 4)
	for i, c := range cs {
		c.View(func(n *Node) { ids[i] = n.ID() })
	}
	for i, r := range SplitEven(3) {
		err := cs[i].Update(func(n *Node, _ time.Time) error {
			n.setConfigEpoch(uint64(i + 1))
			n.observeEpoch(uint64(i + 1))
			return n.AddSlots([]SlotRange{r})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	agreed := func(among ...int) bool {
		var ref *SlotMap
		for _, i := range among {
			var m *SlotMap
			cs[i].View(func(n *Node) { m = n.Slots() })
			if !m.Covered() {
				return false
			}
			if ref == nil {
				ref = m
			} else if ref.owners != m.owners {
				return false
			}
		}
		return true
	}
	waitFor(t, "slot map agreed", func() bool { return agreed(0, 1, 2, 3) })
	waitFor(t, "replicate", func() bool {
		return cs[3].Update(func(n *Node, _ time.Time) error { return n.Replicate(ids[0]) }) == nil
	})
	waitFor(t, "replica known", func() bool {
		var ok bool
		cs[1].View(func(n *Node) { p, _ := n.Peer(ids[3]); ok = p.Role == RoleReplica && p.Primary == ids[0] })
		return ok
	})

	cs[0].Close()
	cs[0] = nil
	start := time.Now()
	owner := func(i int) NodeID {
		var o NodeID
		cs[i].View(func(n *Node) { o = n.Slots().Owner(0).Node })
		return o
	}
	waitFor(t, "failover", func() bool { return owner(1) == ids[3] && owner(2) == ids[3] && owner(3) == ids[3] })
	t.Logf("failover seen everywhere %v after the primary stopped (shared machine)", time.Since(start))

	// no Join: the restarted peer dials the peers of its saved view
	cs[0] = startTestCluster(t, 0, dirs[0])
	waitFor(t, "old primary rejoins as a replica", func() bool {
		var r Role
		var p, id NodeID
		cs[0].View(func(n *Node) { s := n.Self(); r, p, id = s.Role, s.Primary, n.ID() })
		return id == ids[0] && r == RoleReplica && p == ids[3] && agreed(0, 1, 2, 3)
	})
}
