package keyspace

import (
	"encoding/hex"
	"fmt"
	"testing"
)

func fv(v string) [][]byte { return [][]byte{[]byte("f"), []byte(v)} }

func ids(s *Stream) string {
	var out []string
	s.Range(StreamID{}, MaxStreamID, false, func(e StreamEntry) bool {
		out = append(out, e.ID.String())
		return true
	})
	return fmt.Sprint(out)
}

func TestStreamIDOrder(t *testing.T) {
	max := MaxStreamID
	if next, ok := max.Next(); ok || next != (StreamID{}) {
		t.Errorf("max.Next() = %v, %v", next, ok)
	}
	if prev, ok := (StreamID{}).Prev(); ok || prev != (StreamID{}) {
		t.Errorf("0-0.Prev() = %v, %v", prev, ok)
	}
	if n, _ := (StreamID{1, 1<<64 - 1}).Next(); n != (StreamID{2, 0}) {
		t.Errorf("1-max.Next() = %v", n)
	}
	if p, _ := (StreamID{2, 0}).Prev(); p != (StreamID{1, 1<<64 - 1}) {
		t.Errorf("2-0.Prev() = %v", p)
	}
}

// TestStreamNodes checks the node boundaries and the trims that follow
// them: a node holds MaxEntries entries (live or deleted), "~" removes
// whole nodes only, an exact trim removes entries inside the first node
// it cannot drop, and a node whose entries are all deleted goes away.
func TestStreamNodes(t *testing.T) {
	lim := NodeLimits{MaxEntries: 3, MaxBytes: 4096}
	build := func(n int) *Stream {
		s := NewStream()
		for i := 1; i <= n; i++ {
			s.Append(StreamID{uint64(i), 0}, fv("x"), lim)
		}
		return s
	}
	tests := []struct {
		name      string
		n         int
		args      TrimArgs
		deleted   int64
		wantNodes int
		wantIDs   string
	}{
		{"maxlen approx keeps a partial node", 10, TrimArgs{MaxLen: true, N: 5, Approx: true}, 3, 3,
			"[4-0 5-0 6-0 7-0 8-0 9-0 10-0]"},
		{"maxlen exact", 10, TrimArgs{MaxLen: true, N: 5}, 5, 3, "[6-0 7-0 8-0 9-0 10-0]"},
		{"maxlen approx limited", 10, TrimArgs{MaxLen: true, N: 0, Approx: true, Limit: 5}, 3, 3,
			"[4-0 5-0 6-0 7-0 8-0 9-0 10-0]"},
		{"minid approx", 10, TrimArgs{MinID: StreamID{8, 0}, Approx: true}, 6, 2, "[7-0 8-0 9-0 10-0]"},
		{"minid exact", 10, TrimArgs{MinID: StreamID{8, 0}}, 7, 2, "[8-0 9-0 10-0]"},
		{"nothing to trim", 4, TrimArgs{MaxLen: true, N: 10}, 0, 2, "[1-0 2-0 3-0 4-0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := build(tt.n)
			if got := s.Trim(tt.args); got != tt.deleted {
				t.Errorf("deleted %d, want %d", got, tt.deleted)
			}
			if s.Nodes() != tt.wantNodes {
				t.Errorf("%d nodes, want %d", s.Nodes(), tt.wantNodes)
			}
			if got := ids(s); got != tt.wantIDs {
				t.Errorf("entries %s, want %s", got, tt.wantIDs)
			}
		})
	}
	// deleted entries still count towards a node's size
	s := build(2)
	s.Delete(StreamID{2, 0})
	s.Append(StreamID{3, 0}, fv("x"), lim)
	s.Append(StreamID{4, 0}, fv("x"), lim)
	if s.Nodes() != 2 {
		t.Errorf("after a delete and two appends: %d nodes, want 2", s.Nodes())
	}
	// a node with no live entry is dropped
	s.Delete(StreamID{4, 0})
	if s.Nodes() != 1 || s.MaxDeletedID() != (StreamID{4, 0}) {
		t.Errorf("after deleting a node's only entry: %d nodes, max deleted %v", s.Nodes(), s.MaxDeletedID())
	}
	// the byte limit starts a node too
	s = NewStream()
	big := make([]byte, 3000)
	for i := 1; i <= 3; i++ {
		s.Append(StreamID{uint64(i), 0}, [][]byte{[]byte("f"), big}, NodeLimits{MaxEntries: 100, MaxBytes: 4096})
	}
	if s.Nodes() != 3 {
		t.Errorf("3000-byte entries: %d nodes, want 3", s.Nodes())
	}
}

func TestStreamRaxNodes(t *testing.T) {
	lim := NodeLimits{MaxEntries: 1}
	tests := []struct {
		ids  []StreamID
		want int
	}{
		{nil, 1},
		{[]StreamID{{1, 0}}, 2},
		// 1-0 and 2-0 share 7 bytes, differ in the 8th, then share 8 zero
		// bytes: a compressed node, a branch, two compressed tails, two leaves
		{[]StreamID{{1, 0}, {2, 0}}, 6},
	}
	for _, tt := range tests {
		s := NewStream()
		for _, id := range tt.ids {
			s.Append(id, fv("x"), lim)
		}
		if got := s.RaxNodes(); got != tt.want {
			t.Errorf("%v: %d nodes, want %d", tt.ids, got, tt.want)
		}
	}
}

// TestStreamLag follows Redis's read counter and lag through additions and
// deletions (unit/type/stream-cgroups "Consumer group lag with XDELs").
func TestStreamLag(t *testing.T) {
	s := NewStream()
	for i := uint64(1); i <= 5; i++ {
		s.Append(StreamID{i, 0}, fv("x"), DefaultNodeLimits)
	}
	g := s.CreateGroup([]byte("g"), StreamID{}, InvalidEntriesRead)
	lag := func() string {
		n, ok := s.Lag(g)
		if !ok {
			return "nil"
		}
		return fmt.Sprint(n)
	}
	if got := lag(); got != "5" {
		t.Errorf("new group: lag %s, want 5", got)
	}
	s.Advance(g, StreamID{1, 0})
	if g.EntriesRead != 1 || lag() != "4" {
		t.Errorf("after one read: entries-read %d lag %s", g.EntriesRead, lag())
	}
	s.Delete(StreamID{3, 0})
	if got := lag(); got != "nil" {
		t.Errorf("with a tombstone ahead: lag %s, want nil", got)
	}
	s.Advance(g, StreamID{2, 0})
	s.Advance(g, StreamID{4, 0})
	s.Advance(g, StreamID{5, 0})
	if g.EntriesRead != 5 || lag() != "0" {
		t.Errorf("read to the end: entries-read %d lag %s", g.EntriesRead, lag())
	}
}

func TestStreamCloneIsDeep(t *testing.T) {
	s := sampleStream()
	c := s.Clone()
	c.Group([]byte("g")).Ack(StreamID{2, 0})
	c.Delete(StreamID{1, 0})
	c.Append(StreamID{9, 0}, fv("z"), DefaultNodeLimits)
	if s.Len() != 4 || s.Group([]byte("g")).PendingLen() != 2 || s.LastID() != (StreamID{5, 0}) {
		t.Errorf("original changed: len %d pending %d last %v", s.Len(), s.Group([]byte("g")).PendingLen(), s.LastID())
	}
	if c.Len() != 4 || c.Group([]byte("g")).PendingLen() != 1 || c.LastID() != (StreamID{9, 0}) {
		t.Errorf("clone: len %d pending %d last %v", c.Len(), c.Group([]byte("g")).PendingLen(), c.LastID())
	}
}

func TestStreamDumpRoundTrip(t *testing.T) {
	s := sampleStream()
	e, err := ParseDump(Dump(Streams.NewEntry(s)))
	if err != nil {
		t.Fatal(err)
	}
	r := Streams.Of(e)
	if ids(r) != ids(s) || r.LastID() != s.LastID() || r.MaxDeletedID() != s.MaxDeletedID() || r.EntriesAdded() != s.EntriesAdded() {
		t.Errorf("restored %s last %v maxdel %v added %d", ids(r), r.LastID(), r.MaxDeletedID(), r.EntriesAdded())
	}
	g := r.Group([]byte("g"))
	if g == nil || g.PendingLen() != 2 || g.NumConsumers() != 2 || g.EntriesRead != 4 {
		t.Fatalf("restored group %+v", g)
	}
	if p := g.Pending(StreamID{3, 0}); p == nil || p.Consumer.Name != "a" || p.DeliveryTime != 120 {
		t.Errorf("pending entry of a deleted entry: %+v", p)
	}
	if r.Group([]byte("empty")).EntriesRead != InvalidEntriesRead {
		t.Error("an unknown read counter was not kept")
	}
}

// A stream payload of Redis 5/6 (RDB type 15) has no read counters: each
// group's is estimated from its last delivered ID, as Redis 7 does. The
// payload (built by rdbcodec's test encoder, streamValue): entries 5-0
// and 6-0 (5-1 deleted), group g at 6-0 with consumer alice owning both.
func TestParseDumpLegacyRedisStream(t *testing.T) {
	p, err := hex.DecodeString("0f0110000000000000000500000000000000004040400000001a0002010101020181610281620200010201000100010101" +
		"0201050101010001010101018163020301060100010101000101018178028179020601ff02060001016706000200000000000000" +
		"050000000000000000e8030000000000000100000000000000060000000000000000d007000000000000030105616c696365b80b" +
		"00000000000002000000000000000500000000000000000000000000000006000000000000000009004dd87bdd8addd036")
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseDump(p)
	if err != nil {
		t.Fatal(err)
	}
	s := Streams.Of(e)
	if s.Len() != 2 || s.EntriesAdded() != 2 || s.LastID() != (StreamID{6, 0}) || !s.MaxDeletedID().IsZero() {
		t.Fatalf("stream: len %d added %d last %v maxdel %v", s.Len(), s.EntriesAdded(), s.LastID(), s.MaxDeletedID())
	}
	g := s.Group([]byte("g"))
	if g == nil || g.EntriesRead != 2 || g.PendingLen() != 2 {
		t.Fatalf("group %+v", g)
	}
	if lag, ok := s.Lag(g); !ok || lag != 0 {
		t.Errorf("lag %d %v", lag, ok)
	}
	c := g.Consumer([]byte("alice"))
	if c == nil || c.PendingLen() != 2 || c.SeenTime != 3000 || c.ActiveTime != 3000 {
		t.Errorf("consumer %+v", c)
	}
	if p := g.Pending(StreamID{6, 0}); p == nil || p.DeliveryCount != 3 || p.DeliveryTime != 2000 || p.Consumer != c {
		t.Errorf("pending 6-0: %+v", p)
	}
}
