package peer

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// clusterCmd runs a CLUSTER subcommand through the router and returns the
// raw RESP reply.
func runCluster(r *Router, args ...string) string {
	var w resp.Writer
	w.Proto = 2
	a := [][]byte{[]byte("cluster")}
	for _, s := range args {
		a = append(a, []byte(s))
	}
	r.Command(a, &w)
	return string(w.B)
}

// TestClusterSetSlotForgetReset drives SETSLOT, FORGET and RESET through
// the CLUSTER commands of three peers gossiping over memberlist.
func TestClusterSetSlotForgetReset(t *testing.T) {
	defer verifyNoLeaks(t)
	cs := make([]*Cluster, 3)
	rs := make([]*Router, 3)
	ids := make([]NodeID, 3)
	for i := range cs {
		cs[i] = startTestCluster(t, i, t.TempDir())
		rs[i] = NewRouter(cs[i])
		ids[i] = cs[i].ID()
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	formShards(t, cs)
	owner := func(i int, s uint16) NodeID { return cs[i].SlotOwner(s) }
	waitFor(t, "slots known", func() bool { return owner(1, 0) == ids[0] && owner(2, 0) == ids[0] && owner(0, 16383) == ids[2] })

	for _, c := range []struct{ args, want string }{
		{"setslot x node " + string(ids[0]), "-ERR Invalid or out of range slot"},
		{"setslot 5 bogus " + string(ids[0]), "-ERR Invalid CLUSTER SETSLOT action"},
		{"setslot 5 stable extra", "-ERR Invalid CLUSTER SETSLOT action"},
		{"setslot 5 node " + strings.Repeat("f", 40), "-ERR Unknown node"},
		{"setslot 5 migrating " + string(ids[1]), "+OK"},
	} {
		if got := runCluster(rs[0], strings.Fields(c.args)...); !strings.HasPrefix(got, c.want) {
			t.Errorf("CLUSTER %s on node 0: %q, want %q", c.args, got, c.want)
		}
	}
	if got := runCluster(rs[1], "setslot", "5", "importing", string(ids[0])); got != "+OK\r\n" {
		t.Fatalf("importing: %q", got)
	}
	if got := runCluster(rs[0], "nodes"); !strings.Contains(got, "[5->-"+string(ids[1])+"]") {
		t.Errorf("CLUSTER NODES of the source lacks the migrating slot:\n%s", got)
	}
	if got := runCluster(rs[1], "nodes"); !strings.Contains(got, "[5-<-"+string(ids[0])+"]") {
		t.Errorf("CLUSTER NODES of the target lacks the importing slot:\n%s", got)
	}
	for _, i := range []int{1, 0} { // target first, as redis-cli
		if got := runCluster(rs[i], "setslot", "5", "node", string(ids[1])); got != "+OK\r\n" {
			t.Fatalf("setslot node on %d: %q", i, got)
		}
	}
	waitFor(t, "slot 5 moved everywhere", func() bool {
		return owner(0, 5) == ids[1] && owner(1, 5) == ids[1] && owner(2, 5) == ids[1]
	})
	if got := runCluster(rs[0], "nodes"); strings.Contains(got, "[") {
		t.Errorf("open slots left after the move:\n%s", got)
	}

	// node 2 is deleted: forgotten by the others, then reset
	for _, i := range []int{0, 1} {
		if got := runCluster(rs[i], "forget", string(ids[2])); got != "+OK\r\n" {
			t.Fatalf("forget on %d: %q", i, got)
		}
	}
	if got := runCluster(rs[2], "reset", "bogus"); !strings.HasPrefix(got, "-ERR syntax error") {
		t.Errorf("reset bogus: %q", got)
	}
	if got := runCluster(rs[2], "reset", "soft"); got != "+OK\r\n" {
		t.Fatalf("reset soft: %q", got)
	}
	time.Sleep(2 * time.Second) // gossip goes on meanwhile
	for _, i := range []int{0, 1} {
		if got := runCluster(rs[i], "nodes"); strings.Contains(got, string(ids[2])) {
			t.Errorf("node %d knows the deleted node again:\n%s", i, got)
		}
	}
	if got := runCluster(rs[2], "nodes"); strings.Count(got, "connected") != 1 || !strings.Contains(got, string(ids[2])) {
		t.Errorf("the reset node knows:\n%s", got)
	}
	if got := runCluster(rs[2], "reset", "hard"); got != "+OK\r\n" {
		t.Fatalf("reset hard: %q", got)
	}
	if id := cs[2].ID(); id == ids[2] || !ValidNodeID(string(id)) {
		t.Errorf("hard reset kept the ID or made a bad one: %s", id)
	}
	if got := runCluster(rs[2], "info"); !strings.Contains(got, "cluster_current_epoch:0") || !strings.Contains(got, "cluster_known_nodes:1") {
		t.Errorf("after a hard reset:\n%s", got)
	}
}
