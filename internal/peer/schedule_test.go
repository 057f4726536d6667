package peer

import (
	"slices"
	"testing"
	"time"
)

// The heartbeat schedule and the owner's ticks at the node's deadlines.
// Every simulation also checks, at each of its steps, that a Tick before
// the node's NextDeadline changes nothing (simNet.tick, tickState): the
// owner skips those Ticks.

// TestNextDeadline drives one node only at its deadlines, with an
// injected clock: heartbeats every HeartbeatInterval while nothing
// changes; a peer silent for NodeTimeout suspected one nanosecond after
// it, and the suspicion announced MinHeartbeatInterval after the last
// heartbeat instead of at the next periodic one.
func TestNextDeadline(t *testing.T) {
	cfg := DefaultNodeConfig(testID(0), "127.0.0.1:7000")
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// on the heartbeats' grid: the periodic ones fall on t0 + k·interval
	t0 := time.Unix(1_700_000_000, 0).Truncate(cfg.HeartbeatInterval)
	other := testID(1)
	n.addPeer(other, "127.0.0.1:7001", t0)
	if d := n.NextDeadline(t0); !d.Equal(t0) {
		t.Fatalf("a node that never sent a heartbeat: deadline %v after now, want now", d.Sub(t0))
	}
	n.Tick(t0)
	if ms := drain(n).Messages; len(ms) != 1 || ms[0].Type != MsgHeartbeat || ms[0].To != "" {
		t.Fatalf("first Tick sent %v, want one heartbeat to every peer", ms)
	}
	type event struct {
		at       time.Duration // since t0
		suspects []NodeID      // of the heartbeat sent then; nil: none sent
		sent     bool
	}
	var got []event
	now := t0
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("more than 100 deadlines in 1.5 s: NextDeadline does not move on")
		}
		d := n.NextDeadline(now)
		if d.Before(now) {
			t.Fatalf("deadline %v before now %v", d, now)
		}
		if d.Sub(t0) > 1500*time.Millisecond {
			break
		}
		// a Tick just before the deadline does nothing
		if d.After(now) {
			n.Tick(d.Add(-1))
			if ms := drain(n).Messages; len(ms) != 0 {
				t.Fatalf("a Tick 1 ns before the deadline %v sent %v", d.Sub(t0), ms)
			}
		}
		n.Tick(d)
		ev := event{at: d.Sub(t0)}
		for _, m := range drain(n).Messages {
			if m.Type == MsgHeartbeat {
				ev.sent, ev.suspects = true, m.Suspects
			}
		}
		got = append(got, ev)
		now = d
	}
	h, m, to := cfg.HeartbeatInterval, cfg.MinHeartbeatInterval, cfg.NodeTimeout
	if 2*h >= to || to-2*h < m || 3*h-to >= m {
		t.Fatalf("the expectations below assume two heartbeats before the node timeout, the second at least the minimum interval before it, the third less than that after it (%v, %v, %v)", h, m, to)
	}
	want := []event{
		{at: h, sent: true},
		{at: 2 * h, sent: true},
		{at: to + 1, sent: true, suspects: []NodeID{other}},     // suspected and announced at once
		{at: to + 1 + m, sent: true, suspects: []NodeID{other}}, // the next grid point is too close: the minimum interval
		{at: 4 * h, sent: true, suspects: []NodeID{other}},      // back on the grid
	}
	if len(got) != len(want) {
		t.Fatalf("deadlines %v, want %v", got, want)
	}
	for i := range want {
		if got[i].at != want[i].at || got[i].sent != want[i].sent || !slices.Equal(got[i].suspects, want[i].suspects) {
			t.Errorf("deadline %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if p, _ := n.Peer(other); !p.PFail {
		t.Error("the silent peer is not suspected")
	}
}

// TestUntilTick: the owner sleeps until the node's deadline, but at least
// TickInterval and at most MaxTickInterval after its last Tick.
func TestUntilTick(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.Node = DefaultNodeConfig(testID(0), "127.0.0.1:7000")
	c, saved, err := newCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.initNode(0, saved); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0).Truncate(cfg.Node.HeartbeatInterval)
	if d := c.untilTick(t0, t0); d != cfg.TickInterval {
		t.Errorf("a heartbeat due at once, last Tick now: wait %v, want the tick interval %v", d, cfg.TickInterval)
	}
	c.tick(t0)
	drain(c.node)
	h := cfg.Node.HeartbeatInterval
	if d := c.untilTick(t0, t0); d != h {
		t.Errorf("next heartbeat in %v: wait %v", h, d)
	}
	if d := c.untilTick(t0, t0.Add(40*time.Millisecond)); d != h-40*time.Millisecond {
		t.Errorf("40 ms later: wait %v, want %v", d, h-40*time.Millisecond)
	}
	if d := c.untilTick(t0, t0.Add(time.Second)); d != 0 {
		t.Errorf("a second after the last Tick: wait %v, want 0", d)
	}
	c.cfg.MaxTickInterval = 100 * time.Millisecond
	if d := c.untilTick(t0, t0.Add(40*time.Millisecond)); d != 60*time.Millisecond {
		t.Errorf("longest tick interval 100 ms, 40 ms after the last: wait %v, want 60ms", d)
	}
}

// TestHeartbeatSchedule: in a simulated 6-node cluster, ticking every
// step and ticking only at the deadlines as the owner does, an idle node
// sends its header once per HeartbeatInterval (not once per tick) and
// never twice within MinHeartbeatInterval; the owner ticks about once
// per MaxTickInterval instead of every TickInterval. When a primary
// crashes, every node announces its suspicion within MinHeartbeatInterval
// of suspecting it, and every node marks it FAIL within NodeTimeout +
// MinHeartbeatInterval + the network's delay (virtual time).
func TestHeartbeatSchedule(t *testing.T) {
	for _, atDeadlines := range []bool{false, true} {
		nw := newSimNet(t, 6, 3)
		nw.atDeadlines = atDeadlines
		nw.shards(3)
		cfg := nw.cfgs[nw.ids[0]]
		ccfg := DefaultClusterConfig()
		sent := map[NodeID][]time.Time{}
		nw.onSend = func(from NodeID, m Message) {
			if m.Type == MsgHeartbeat {
				sent[from] = append(sent[from], nw.now)
			}
		}
		clear(nw.ticks)
		const idle = 10 * time.Second
		nw.run(idle)
		lo, hi := int(idle/(cfg.HeartbeatInterval+nw.step))-1, int(idle/cfg.HeartbeatInterval)+1
		for _, id := range nw.ids {
			hb := sent[id]
			if len(hb) < lo || len(hb) > hi {
				t.Errorf("deadlines %v: %s sent %d heartbeats in %v idle, want %d-%d", atDeadlines, id[36:], len(hb), idle, lo, hi)
			}
			for i := 1; i < len(hb); i++ {
				if gap := hb[i].Sub(hb[i-1]); gap < cfg.MinHeartbeatInterval {
					t.Errorf("deadlines %v: %s sent heartbeats %v apart", atDeadlines, id[36:], gap)
				}
			}
			maxTicks := int(idle/nw.step) + 1
			if atDeadlines {
				maxTicks = int(idle/ccfg.MaxTickInterval) + hi + 1
			}
			if nw.ticks[id] > maxTicks {
				t.Errorf("deadlines %v: %s ticked %d times in %v idle, want at most %d", atDeadlines, id[36:], nw.ticks[id], idle, maxTicks)
			}
		}
		t.Logf("deadlines %v: in %v idle, node 1 sent %d heartbeats and ticked %d times", atDeadlines, idle, len(sent[nw.ids[0]]), nw.ticks[nw.ids[0]])

		victim := nw.ids[0]
		pfailAt, announcedAt, failAt := map[NodeID]time.Time{}, map[NodeID]time.Time{}, map[NodeID]time.Time{}
		nw.onSend = func(from NodeID, m Message) {
			if _, ok := announcedAt[from]; !ok && m.Type == MsgHeartbeat && slices.Contains(m.Suspects, victim) {
				announcedAt[from] = nw.now
			}
		}
		nw.afterTick = func() {
			for _, id := range nw.ids[1:] {
				p, _ := nw.nodes[id].Peer(victim)
				if _, ok := pfailAt[id]; !ok && p.PFail {
					pfailAt[id] = nw.now
				}
				if _, ok := failAt[id]; !ok && p.Fail {
					failAt[id] = nw.now
				}
			}
		}
		crashed := nw.now
		nw.crash(victim)
		nw.runUntil(5*time.Second, "FAIL everywhere", func() bool { return len(failAt) == len(nw.ids)-1 })
		var last time.Duration
		for _, id := range nw.ids[1:] {
			last = max(last, failAt[id].Sub(crashed))
			if a, ok := announcedAt[id]; ok && a.Sub(pfailAt[id]) > cfg.MinHeartbeatInterval+nw.step {
				t.Errorf("deadlines %v: %s suspected the victim at %v and said so %v later", atDeadlines, id[36:], pfailAt[id].Sub(crashed), a.Sub(pfailAt[id]))
			}
		}
		for _, id := range nw.ids[1:3] { // the other primaries: their reports make the FAIL
			if _, ok := announcedAt[id]; !ok {
				t.Errorf("deadlines %v: primary %s never announced its suspicion", atDeadlines, id[36:])
			}
		}
		if bound := cfg.NodeTimeout + cfg.MinHeartbeatInterval + nw.maxDelay + 3*nw.step; last > bound {
			t.Errorf("deadlines %v: FAIL everywhere %v after the crash, want at most %v", atDeadlines, last, bound)
		}
		t.Logf("deadlines %v: crash to FAIL on every live node: %v (virtual time)", atDeadlines, last)
		nw.afterTick, nw.onSend = nil, nil
		// and the failover completes as TestFailoverOnCrash wants
		took := nw.runUntil(5*time.Second, "failover", func() bool { return nw.ownerEverywhere(0) == nw.ids[3] })
		if total := nw.now.Sub(crashed); total > 2*time.Second {
			t.Errorf("deadlines %v: failover %v after the crash (%v after FAIL), want <= 2s", atDeadlines, total, took)
		}
	}
}

// TestSimAtDeadlinesLossy: nodes ticking only at their deadlines over a
// network dropping 20 % of messages still fail over and agree, as in
// TestLossyNetworkOneOwner.
func TestSimAtDeadlinesLossy(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		nw := newSimNet(t, 6, seed)
		nw.atDeadlines = true
		nw.shards(3)
		nw.dropRate, nw.maxDelay = 0.2, 50*time.Millisecond
		nw.crash(nw.ids[1])
		nw.runUntil(30*time.Second, "failover under loss", func() bool { return nw.ownerEverywhere(5461) == nw.ids[4] })
		nw.runUntil(5*time.Second, "agreement under loss", func() bool { return nw.agreed(nw.ids) })
	}
}
