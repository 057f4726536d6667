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
	cfg := DefaultClusterConfig()
	cfg.Node = DefaultNodeConfig("", fmt.Sprintf("127.0.0.1:%d", 7000+i))
	cfg.Store = NewFileStore(dir)
	cfg.Logger = log.New(tlog{t}, fmt.Sprintf("n%d ", i), log.Lmicroseconds)
	c, err := NewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustDo runs an operator command on c.
func mustDo(t *testing.T, c *Cluster, op Op) {
	t.Helper()
	if _, err := c.Do(op); err != nil {
		t.Fatal(err)
	}
}

// formShards gives cs[0..2] a third of the slots each with config epochs
// 1..3 (as redis-cli --cluster create does, before they meet), then joins
// every cluster to the first.
func formShards(t *testing.T, cs []*Cluster) {
	t.Helper()
	for i, r := range SplitEven(3) {
		mustDo(t, cs[i], Op{Kind: OpSetConfigEpoch, Epoch: uint64(i + 1)})
		mustDo(t, cs[i], Op{Kind: OpAddSlots, Slots: []SlotRange{r}})
	}
	for i := 1; i < len(cs); i++ {
		if err := cs[i].Join([]string{busAddr(cs[0])}); err != nil {
			t.Fatal(err)
		}
	}
}

// statusOf returns c's Status.
func statusOf(t *testing.T, c *Cluster) *Status {
	t.Helper()
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
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
	ids := make([]NodeID, 4)
	for i, c := range cs {
		ids[i] = c.ID()
	}
	formShards(t, cs)
	agreed := func(among ...int) bool {
		for s := uint16(0); s < NumSlots; s++ {
			ref := cs[among[0]].SlotOwner(s)
			if ref == "" {
				return false
			}
			for _, i := range among[1:] {
				if cs[i].SlotOwner(s) != ref {
					return false
				}
			}
		}
		return true
	}
	waitFor(t, "slot map agreed", func() bool { return agreed(0, 1, 2, 3) })
	waitFor(t, "replicate", func() bool {
		_, err := cs[3].Do(Op{Kind: OpReplicate, Node: ids[0]})
		return err == nil
	})
	waitFor(t, "replica known", func() bool {
		p, _ := statusOf(t, cs[1]).Peer(ids[3])
		return p.Role == RoleReplica && p.Primary == ids[0]
	})

	cs[0].Close()
	cs[0] = nil
	start := time.Now()
	owner := func(i int) NodeID { return cs[i].SlotOwner(0) }
	waitFor(t, "failover", func() bool { return owner(1) == ids[3] && owner(2) == ids[3] && owner(3) == ids[3] })
	t.Logf("failover seen everywhere %v after the primary stopped (shared machine)", time.Since(start))

	// no Join: the restarted peer dials the peers of its saved view
	cs[0] = startTestCluster(t, 0, dirs[0])
	waitFor(t, "old primary rejoins as a replica", func() bool {
		st := statusOf(t, cs[0])
		me := st.Self()
		return st.ID == ids[0] && me.Role == RoleReplica && me.Primary == ids[3] && agreed(0, 1, 2, 3)
	})
}

// TestTimerStepsQueuedMessagesFirst: when the owner's timer fires, the
// messages already queued for it are stepped before the node ticks. A
// saturated peer's owner goroutine runs late (its work is ahead of it in
// the Go scheduler); by then a peer's heartbeat may wait in its queue,
// and a tick that came first judged that peer silent (PFAIL) although it
// was heard.
func TestTimerStepsQueuedMessagesFirst(t *testing.T) {
	nw := newSimNet(t, 3, 1)
	nw.shards(3)
	nw.run(time.Second)
	a, b := nw.ids[0], nw.ids[1]
	c := nw.cls[a]
	pb, _ := nw.nodes[a].Peer(b)
	if pb.PFail {
		t.Fatal("b suspected before the test")
	}
	// a's owner ran late: the node timeout passed since it last stepped
	// anything, and b's latest heartbeat waits in its queue
	nw.now = pb.LastSeen.Add(nw.cfgs[a].NodeTimeout + 200*time.Millisecond)
	hb := nw.nodes[b].header(Message{Type: MsgHeartbeat})
	queue := func() {
		select {
		case c.inputs <- input{msg: &hb}:
		default:
			t.Fatal("inputs queue full")
		}
	}

	// the scenario: ticking before stepping the queued heartbeat suspects b
	node := *nw.nodes[a].peers[b]
	c.node.Tick(nw.now)
	if p, _ := nw.nodes[a].Peer(b); !p.PFail {
		t.Fatal("a tick past the node timeout does not suspect b: the test tests nothing")
	}
	*nw.nodes[a].peers[b] = node // as before that tick

	queue()
	waiting, at := c.onTimer(nil)
	c.answer(waiting, c.flush())
	if p, _ := nw.nodes[a].Peer(b); p.PFail || !at.Equal(nw.now) || len(c.inputs) != 0 {
		t.Fatalf("after the timer: b pfail %v (want false: its heartbeat was queued), tick at %v, %d inputs left", p.PFail, at, len(c.inputs))
	}
}
