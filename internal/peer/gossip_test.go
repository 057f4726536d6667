package peer

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestGossipTargetsKeepDeadMembers: the protocol's messages (heartbeats,
// FAIL, votes, the execution layer's) still go to a member memberlist
// declared dead, for goneKeep or until it joins again: failures are the
// protocol's to judge. Before, a peer saturated at its CPU quota, probed
// too slowly for memberlist (0.5 s probe timeout), was sent no heartbeat
// from the moment memberlist marked it dead, and so was judged FAIL by
// the protocol too.
func TestGossipTargetsKeepDeadMembers(t *testing.T) {
	g := &gossip{members: map[string]memberlist.Node{}}
	ev := (*events)(g)
	node := func(name string) *memberlist.Node {
		return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 7000, State: memberlist.StateAlive}
	}
	names := func(now time.Time) []string {
		var out []string
		for _, m := range g.targets(now) {
			out = append(out, m.Name)
		}
		slices.Sort(out)
		return out
	}
	// names that are not node IDs: the events do not reach a Cluster
	ev.NotifyJoin(node("a"))
	ev.NotifyJoin(node("b"))
	dead := node("b")
	dead.State = memberlist.StateDead
	ev.NotifyLeave(dead)
	now := time.Now()
	if got := names(now); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("targets after memberlist declared b dead: %v, want a and b", got)
	}
	if _, ok := g.member("b", now); !ok {
		t.Fatal("a reliable message to b is dropped right after memberlist declared it dead")
	}
	if got := names(now.Add(goneKeep + time.Second)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("targets goneKeep later: %v, want a only", got)
	}
	if _, ok := g.member("b", now.Add(goneKeep+time.Second)); ok {
		t.Fatal("b is still a target goneKeep after memberlist declared it dead")
	}
	// b dead again, then back under a new name (a reset's generation)
	ev.NotifyLeave(dead)
	ev.NotifyJoin(node("b.1"))
	if got := names(time.Now()); !slices.Equal(got, []string{"a", "b.1"}) {
		t.Fatalf("targets after b came back as b.1: %v, want a and b.1 (the old name dropped)", got)
	}
	if goneKeep >= ForgetTTL {
		t.Fatalf("goneKeep %v must stay below ForgetTTL %v (a reset node ignores its old peers that long)", goneKeep, ForgetTTL)
	}
}
