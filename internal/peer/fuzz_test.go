package peer

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzStep feeds arbitrary gossip (as it arrives off the network, JSON)
// to a node of a formed cluster: it may be rejected, never crash.
func FuzzStep(f *testing.F) {
	f.Add([]byte(`{"Type":1,"From":"0000000000000000000000000000000000000002","Role":1,"ConfigEpoch":9,"Slots":[{"Start":0,"End":16383}]}`))
	f.Add([]byte(`{"Type":3,"From":"0000000000000000000000000000000000000004","Role":2,"Primary":"0000000000000000000000000000000000000001","Subject":"0000000000000000000000000000000000000001","CurrentEpoch":99}`))
	f.Add([]byte(`{"Type":2,"From":"0000000000000000000000000000000000000002","Role":1,"Subject":"0000000000000000000000000000000000000003"}`))
	f.Add([]byte(`{"id":"0000000000000000000000000000000000000002","peers":[{"id":"0000000000000000000000000000000000000009","role":1,"slots":[{"Start":5,"End":4}]}]}`))
	// form the cluster once; every input starts from node 0's saved view
	nw := newSimNet(f, 4, 1)
	nw.shards(3)
	saved := nw.nodes[nw.ids[0]].State()
	cfg := nw.cfgs[nw.ids[0]]
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Restore(saved, nw.now); err != nil {
			t.Fatal(err)
		}
		var m Message
		if json.Unmarshal(b, &m) == nil {
			_ = n.Step(m, nw.now)
		}
		var st State
		if json.Unmarshal(b, &st) == nil {
			_, _ = n.Apply(Op{Kind: OpMergeView, View: &st}, nw.now)
		}
		n.Tick(nw.now.Add(time.Second))
		n.Advance(n.Ready())
		if c := n.Slots().Count(); c > NumSlots {
			t.Fatalf("%d slots assigned", c)
		}
	})
}
