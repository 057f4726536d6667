package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func wireSamples() []Message {
	a := NodeID(strings.Repeat("a", 40))
	b := NodeID(strings.Repeat("b", 40))
	c := NodeID(strings.Repeat("c", 40))
	return []Message{
		{Type: MsgHeartbeat, From: a, CurrentEpoch: 7, ConfigEpoch: 3, Addr: "127.0.0.1:7000", BusPort: 17000, Role: RolePrimary,
			Offset: 1 << 40, Slots: []SlotRange{{0, 5460}, {10923, 16383}}, Suspects: []NodeID{b, c}},
		{Type: MsgHeartbeat, From: b, Addr: "[::1]:7001", BusPort: 17001, Role: RoleReplica, Primary: a, Offset: 99},
		{Type: MsgFail, From: a, Role: RolePrimary, Subject: c, Slots: []SlotRange{{0, 0}}},
		{Type: MsgVoteRequest, From: b, CurrentEpoch: 12, Role: RoleReplica, Primary: a, Subject: a, Forced: true},
		{Type: MsgVote, From: c, To: b, CurrentEpoch: 12, Role: RolePrimary},
	}
}

// TestWireRoundTrip: every kind of message decodes from the binary form
// as it does from JSON.
func TestWireRoundTrip(t *testing.T) {
	for _, m := range wireSamples() {
		b, ok := encodeWire(&m)
		if !ok {
			t.Fatalf("%s: no binary form", m.Type)
		}
		got, bin, err := decodeMessage(b)
		if err != nil || !bin {
			t.Fatalf("%s: decode: %v (binary %v)", m.Type, err, bin)
		}
		js, _ := json.Marshal(m)
		want, bin, err := decodeMessage(js)
		if err != nil || bin {
			t.Fatalf("%s: decode JSON: %v (binary %v)", m.Type, err, bin)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\nbinary %+v\nJSON   %+v", m.Type, got, want)
		}
		if len(b) >= len(js)/2 {
			t.Errorf("%s: %d bytes binary, %d JSON", m.Type, len(b), len(js))
		}
	}
}

func TestDecodeWireRejects(t *testing.T) {
	m := wireSamples()[0]
	good, _ := encodeWire(&m)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"only the version", []byte{wireV1}},
		{"truncated", good[:len(good)-3]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"unknown flags", append([]byte{wireV1, 1, 0x40}, good[3:]...)},
		{"unknown version", append([]byte{0x03}, good[1:]...)},
		{"id over the limit", append([]byte{wireV1, 1, 0, 0xff, 0x7f}, good[3:]...)},
		{"too many slot ranges", func() []byte {
			b := appendWire(nil, &Message{Type: MsgHeartbeat, From: m.From, Role: RolePrimary})
			// replace the last two counts (slots 0, suspects 0) by a huge slot count
			return append(b[:len(b)-2], 0xff, 0xff, 0x03, 0)
		}()},
		{"slot out of range", appendWire(nil, &Message{Type: MsgHeartbeat, From: m.From, Role: RolePrimary, Slots: []SlotRange{{0, NumSlots}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeMessage(tc.in)
			if err == nil {
				t.Fatalf("accepted % x", tc.in)
			}
			if tc.name != "unknown version" && !errors.Is(err, errBadWire) {
				t.Errorf("error %v does not wrap errBadWire", err)
			}
		})
	}
}

// FuzzDecodeWire: any input is decoded or refused, never a crash; what
// decodes encodes to the same bytes again after one round.
func FuzzDecodeWire(f *testing.F) {
	for _, m := range wireSamples() {
		b, _ := encodeWire(&m)
		f.Add(b)
	}
	f.Add([]byte{wireV1, 1, 0, 0})
	f.Add([]byte{wireV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeWire(b)
		if err != nil {
			return
		}
		again, ok := encodeWire(&m)
		if !ok {
			t.Fatalf("decoded %+v has no binary form", m)
		}
		m2, err := decodeWire(again)
		if err != nil {
			t.Fatalf("decode its encoding: %v", err)
		}
		if third, _ := encodeWire(&m2); !bytes.Equal(third, again) {
			t.Fatalf("encoding not stable:\n% x\n% x", again, third)
		}
	})
}

// TestMixedWireVersions runs a node of the previous version (JSON only:
// it neither announces nor reads the binary form) with two current ones:
// the current ones talk binary to each other and JSON to it, so nobody
// stops hearing anybody (a rolling upgrade).
func TestMixedWireVersions(t *testing.T) {
	defer verifyNoLeaks(t)
	cs := make([]*Cluster, 3)
	for i := range cs {
		cs[i] = startTestCluster(t, i, t.TempDir())
		defer cs[i].Close()
	}
	cs[2].gossip.legacyJSON.Store(true)
	formShards(t, cs)
	ids := []NodeID{cs[0].ID(), cs[1].ID(), cs[2].ID()}
	binaryTo := func(c *Cluster, id NodeID) bool {
		c.gossip.memMu.Lock()
		defer c.gossip.memMu.Unlock()
		return c.gossip.wire[id]
	}
	waitFor(t, "current nodes talk binary", func() bool {
		return binaryTo(cs[0], ids[1]) && binaryTo(cs[1], ids[0])
	})
	if binaryTo(cs[0], ids[2]) || binaryTo(cs[1], ids[2]) {
		t.Fatal("binary sent to the node that reads JSON only")
	}
	// longer than the node timeout: a node deaf to the others would
	// suspect them by now
	time.Sleep(2 * DefaultNodeConfig("", "").NodeTimeout)
	for i, c := range cs {
		st := statusOf(t, c)
		for _, p := range st.Peers {
			if p.PFail || p.Fail {
				t.Errorf("node %d suspects %s", i, p.ID)
			}
		}
		if !st.OK {
			t.Errorf("node %d: cluster not ok", i)
		}
	}
}
