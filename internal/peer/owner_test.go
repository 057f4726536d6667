package peer

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// gateStore is a Store whose disk the test watches and whose saves it can
// hold: the next `hold` saves block, after signalling entered, until
// release is closed. Completed saves are recorded in completion order.
type gateStore struct {
	mu      sync.Mutex
	disk    *State  // what a restart would load
	history []State // completed saves, in the order they landed
	hold    int
	entered chan struct{}
	release chan struct{}
}

func newGateStore() *gateStore {
	return &gateStore{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (s *gateStore) Load() (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disk == nil {
		return State{}, false, nil
	}
	return *s.disk, true, nil
}

func (s *gateStore) Save(st State) error {
	s.mu.Lock()
	held := s.hold > 0
	if held {
		s.hold--
	}
	s.mu.Unlock()
	if held {
		s.entered <- struct{}{}
		<-s.release // a slow disk
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disk = &st
	s.history = append(s.history, st)
	return nil
}

// holdNext makes the next save block until release.
func (s *gateStore) holdNext() {
	s.mu.Lock()
	s.hold++
	s.mu.Unlock()
}

func (s *gateStore) durable() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disk == nil {
		return State{}
	}
	return *s.disk
}

// recTransport records what a node sends, and for each vote whether the
// epoch it was cast in was on disk when it left.
type recTransport struct {
	store *gateStore
	mu    sync.Mutex
	votes []Message
	early []string // votes that left before their epoch was durable
}

func (r *recTransport) Send(m Message) {
	if m.Type != MsgVote {
		return
	}
	d := r.store.durable()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.votes = append(r.votes, m)
	if d.LastVoteEpoch < m.CurrentEpoch {
		r.early = append(r.early, fmt.Sprintf("vote to %s in epoch %d sent with last_vote_epoch %d on disk", m.To[36:], m.CurrentEpoch, d.LastVoteEpoch))
	}
}

func (r *recTransport) sent() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.votes...)
}

// startBare starts the owner of a node without gossip: messages go to tr,
// the test delivers incoming ones with receive.
func startBare(t *testing.T, id NodeID, store Store, tr Transport) *Cluster {
	t.Helper()
	cfg := DefaultClusterConfig()
	cfg.Node = DefaultNodeConfig(id, "127.0.0.1:7000")
	cfg.Store = store
	c, saved, err := newCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.tr = tr
	if err := c.initNode(0, saved); err != nil {
		t.Fatal(err)
	}
	c.start()
	return c
}

func deliver(t *testing.T, c *Cluster, m Message) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c.receive(b)
}

// TestVoteNotSentBeforeDurable: a voter's first save is slow and its
// second fast. The vote that the second state carries must not leave
// while the first is still being written, every vote must leave with its
// epoch on disk, the saved file must never go back to an older epoch,
// and the voter, restarted from its disk, must not vote again in the
// same epoch.
func TestVoteNotSentBeforeDurable(t *testing.T) {
	defer goleak.VerifyNone(t)
	v, p, r, q := testID(0), testID(1), testID(2), testID(3)
	store := newGateStore()
	tr := &recTransport{store: store}
	c := startBare(t, v, store, tr)
	defer func() { c.Close() }()
	mustDo(t, c, Op{Kind: OpSetConfigEpoch, Epoch: 1})
	mustDo(t, c, Op{Kind: OpAddSlots, Slots: []SlotRange{{0, 8191}}})
	hb := func(from NodeID, role Role, primary NodeID) Message {
		m := Message{Type: MsgHeartbeat, From: from, Role: role, Primary: primary, CurrentEpoch: 2,
			Addr: "127.0.0.1:" + fmt.Sprint(7000+len(from)), BusPort: 17000}
		if role == RolePrimary {
			m.ConfigEpoch, m.Slots = 2, []SlotRange{{8192, 16383}}
		}
		return m
	}
	request := func(from NodeID, epoch uint64) Message {
		// a forced election (CLUSTER FAILOVER FORCE): the voter does not
		// need to see P failed
		return Message{Type: MsgVoteRequest, From: from, Role: RoleReplica, Primary: p, Subject: p,
			CurrentEpoch: epoch, ConfigEpoch: 2, Slots: []SlotRange{{8192, 16383}}, Forced: true, Addr: "127.0.0.1:7009"}
	}
	deliver(t, c, hb(p, RolePrimary, ""))
	deliver(t, c, hb(r, RoleReplica, p))
	if _, err := c.Status(); err != nil { // answered once the above is on disk
		t.Fatal(err)
	}

	// the first save (Q becomes known) is slow ...
	store.holdNext()
	first, err := json.Marshal(hb(q, RoleReplica, p))
	if err != nil {
		t.Fatal(err)
	}
	go c.receive(first) // as memberlist's handler goroutine would
	<-store.entered
	// ... and meanwhile R asks for a vote in epoch 5, whose save is fast
	deliver(t, c, request(r, 5))
	if got := tr.sent(); len(got) != 0 {
		t.Errorf("%d votes left while an older state was still being written", len(got))
	}
	close(store.release)
	waitFor(t, "the vote for R", func() bool { return len(tr.sent()) == 1 })

	tr.mu.Lock()
	for _, e := range tr.early {
		t.Error(e)
	}
	tr.mu.Unlock()
	store.mu.Lock()
	for i := 1; i < len(store.history); i++ {
		a, b := store.history[i-1], store.history[i]
		if b.CurrentEpoch < a.CurrentEpoch || b.LastVoteEpoch < a.LastVoteEpoch {
			t.Errorf("save %d went back: epoch %d, last vote %d after epoch %d, last vote %d",
				i, b.CurrentEpoch, b.LastVoteEpoch, a.CurrentEpoch, a.LastVoteEpoch)
		}
	}
	store.mu.Unlock()

	// a crash now: the voter comes back from its disk, and Q asks in the
	// same epoch
	c.Close()
	c = startBare(t, v, store, tr)
	deliver(t, c, request(q, 5))
	if _, err := c.Status(); err != nil {
		t.Fatal(err)
	}
	if got := tr.sent(); len(got) != 1 {
		t.Errorf("after a restart from disk the voter voted again in epoch 5: votes %v", voteList(got))
	}
}

func voteList(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("to %s in %d", m.To[36:], m.CurrentEpoch))
	}
	return out
}
