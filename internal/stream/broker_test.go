package stream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.MaxBatches == 0 {
		cfg.MaxBatches = 64
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 1024
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// events makes n allocation events of job j at index-independent keys.
func events(index uint64, n int) DeriveFunc {
	return func() []*Event {
		out := make([]*Event, n)
		for i := range out {
			out[i] = &Event{Topic: TopicAllocation, Type: "AllocationPlaced", Key: fmt.Sprintf("a-%d-%d", index, i),
				FilterKeys: []string{"job-1"}, Payload: map[string]int{"i": i}}
		}
		return out
	}
}

// publish publishes entries from..to (inclusive), as the FSM does.
func publish(b *Broker, from, to uint64, per int) {
	for i := from; i <= to; i++ {
		if b.Want(i) {
			b.Publish(i, events(i, per))
		}
	}
}

// collect reads until it has seen want events or the subscription ends.
func collect(t *testing.T, s *Subscription, want int) ([]*Event, error) {
	t.Helper()
	var got []*Event
	for len(got) < want {
		batch, err := s.Next(context.Background())
		if err != nil {
			return got, err
		}
		got = append(got, batch.Events...)
	}
	return got, nil
}

func TestEveryEventOnceInOrder(t *testing.T) {
	b := newTestBroker(t, Config{})
	s, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	publish(b, 1, 40, 3)
	got, err := collect(t, s, 120)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last uint64
	for _, e := range got {
		if seen[e.Key] {
			t.Fatalf("event %s delivered twice", e.Key)
		}
		seen[e.Key] = true
		if e.Index < last {
			t.Fatalf("event at %d after one at %d", e.Index, last)
		}
		last = e.Index
		if string(e.Encoded()) == "" {
			t.Fatalf("event %s not encoded", e.Key)
		}
	}
	if len(seen) != 120 {
		t.Fatalf("got %d distinct events, want 120", len(seen))
	}
}

func TestResumeLosesNothing(t *testing.T) {
	b := newTestBroker(t, Config{Linger: time.Hour})
	first, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	publish(b, 1, 10, 2)
	got, err := collect(t, first, 10) // entries 1..5
	if err != nil {
		t.Fatal(err)
	}
	resumeAt := got[len(got)-1].Index
	first.Close()
	publish(b, 11, 20, 2) // while the client is away (the broker lingers)
	s, err := b.Subscribe(SubscribeRequest{Resume: true, Index: resumeAt})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rest, err := collect(t, s, 2*int(20-resumeAt))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range rest {
		if want := resumeAt + 1 + uint64(i/2); e.Index != want {
			t.Fatalf("event %d at index %d, want %d", i, e.Index, want)
		}
	}
}

func TestResumeTooOld(t *testing.T) {
	tests := []struct {
		name   string
		linger time.Duration
		setup  func(b *Broker)
		index  uint64
		floor  uint64
	}{
		{"evicted from the ring", time.Hour, func(b *Broker) {
			s, _ := b.Subscribe(SubscribeRequest{})
			publish(b, 1, 20, 1) // ring of 8: 1..12 evicted
			waitIndex(t, b, 20)
			s.Close()
		}, 5, 12},
		{"skipped while nobody subscribed", 0, func(b *Broker) {
			publish(b, 1, 30, 1)
		}, 10, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBroker(t, Config{MaxBatches: 8, Linger: tc.linger})
			tc.setup(b)
			_, err := b.Subscribe(SubscribeRequest{Resume: true, Index: tc.index})
			var se *Error
			if !errors.As(err, &se) || se.Code != CodeIndexTooOld {
				t.Fatalf("subscribe from %d: got %v, want %s", tc.index, err, CodeIndexTooOld)
			}
			if se.Floor != tc.floor {
				t.Fatalf("floor %d, want %d (%s)", se.Floor, tc.floor, se.Msg)
			}
			s, err := b.Subscribe(SubscribeRequest{Resume: true, Index: se.Floor})
			if err != nil {
				t.Fatalf("subscribe from the floor: %v", err)
			}
			s.Close()
		})
	}
}

// waitIndex waits until the broker's goroutine has derived the entry at
// index (or a later one).
func waitIndex(t *testing.T, b *Broker, index uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		n := b.ring.newest()
		b.mu.Unlock()
		if n != nil && n.Index >= index {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker never derived index %d (newest: %v)", index, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := newTestBroker(t, Config{MaxBatches: 16})
	slow, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	// The publisher never waits: 100 entries go through a ring of 16
	// while slow reads nothing.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(1); i <= 100; i++ {
			if b.Want(i) {
				b.Publish(i, events(i, 1))
			}
			// fast keeps up
			if _, err := fast.Next(context.Background()); err != nil {
				t.Errorf("fast subscriber: %v", err)
				return
			}
		}
	}()
	<-slow.Done()
	<-done
	if e := slow.Err(); e == nil || e.Code != CodeSlow {
		t.Fatalf("slow subscriber ended with %v, want %s", e, CodeSlow)
	}
	if _, err := slow.Next(context.Background()); !errors.Is(err, slow.Err()) {
		t.Fatalf("Next after the drop: %v", err)
	}
	if fast.Err() != nil {
		t.Fatalf("fast subscriber ended: %v", fast.Err())
	}
}

func TestBytesBound(t *testing.T) {
	b := newTestBroker(t, Config{MaxBatches: 1000, MaxBytes: 2000})
	s, _ := b.Subscribe(SubscribeRequest{})
	defer s.Close()
	// Published without asking Want: s never reads, so the bound drops it,
	// and with no subscriber left Want would skip the rest of the entries
	// (how soon depends on the scheduling of the broker's goroutine).
	for i := uint64(1); i <= 50; i++ {
		b.Publish(i, events(i, 5))
	}
	waitIndex(t, b, 50)
	if st := b.Stats(); st.Bytes > 2000+st.Bytes/st.Batches || st.Batches >= 50 {
		t.Fatalf("ring holds %d batches, %d bytes; want about 2000 bytes", st.Batches, st.Bytes)
	}
}

func TestResetEndsSubscribers(t *testing.T) {
	b := newTestBroker(t, Config{})
	s, _ := b.Subscribe(SubscribeRequest{})
	publish(b, 1, 3, 1)
	b.Reset(3, "restored")
	_, err := collect(t, s, 100)
	var se *Error
	if !errors.As(err, &se) || se.Code != CodeReset {
		t.Fatalf("got %v, want %s", err, CodeReset)
	}
	if _, err := b.Subscribe(SubscribeRequest{Resume: true, Index: 2}); err == nil {
		t.Fatal("resumed from before a reset")
	}
}

func TestQueueOverflowResets(t *testing.T) {
	b := newTestBroker(t, Config{QueueLen: 2})
	s, _ := b.Subscribe(SubscribeRequest{})
	defer s.Close()
	release := make(chan struct{})
	b.Publish(1, func() []*Event { <-release; return nil })
	// The goroutine holds entry 1; the queue takes two more; the rest
	// are lost, and Publish returns at once for each.
	for i := uint64(2); i <= 10; i++ {
		b.Publish(i, events(i, 1))
	}
	close(release)
	_, err := collect(t, s, 100)
	var se *Error
	if !errors.As(err, &se) || se.Code != CodeReset {
		t.Fatalf("got %v, want %s", err, CodeReset)
	}
	if se.Floor < 10 {
		t.Fatalf("floor %d after losing entry 10", se.Floor)
	}
}

func TestWantIsOffWithoutSubscribers(t *testing.T) {
	b := newTestBroker(t, Config{Linger: 0})
	if b.Want(1) {
		t.Fatal("Want with nobody subscribed")
	}
	s, _ := b.Subscribe(SubscribeRequest{})
	if !b.Want(2) {
		t.Fatal("no Want with a subscriber")
	}
	s.Close()
	if b.Want(3) {
		t.Fatal("Want after the last subscriber left (no linger)")
	}
}

func TestFilter(t *testing.T) {
	alloc := &Event{Topic: TopicAllocation, Key: "a1", Namespace: "prod", FilterKeys: []string{"web", "node-1"}}
	node := &Event{Topic: TopicNode, Key: "node-1"}
	tests := []struct {
		name   string
		f      Filter
		e      *Event
		expect bool
	}{
		{"empty matches all", Filter{}, alloc, true},
		{"topic", Filter{Topics: []Topic{TopicNode}}, alloc, false},
		{"topic hit", Filter{Topics: []Topic{TopicNode, TopicAllocation}}, alloc, true},
		{"key is the ID", Filter{Keys: []string{"a1"}}, alloc, true},
		{"key is the job", Filter{Keys: []string{"web"}}, alloc, true},
		{"key misses", Filter{Keys: []string{"db"}}, alloc, false},
		{"namespace", Filter{Namespaces: []string{"dev"}}, alloc, false},
		{"namespace hit", Filter{Namespaces: []string{"prod"}}, alloc, true},
		{"nodes have no namespace", Filter{Namespaces: []string{"dev"}}, node, true},
		{"allow refuses", Filter{Allow: func(*Event) bool { return false }}, node, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(tc.e); got != tc.expect {
				t.Fatalf("Match = %v, want %v", got, tc.expect)
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	for in, want := range map[string]Topic{"job": TopicJob, "Allocation": TopicAllocation, "evaluation": TopicPlan, "PLAN": TopicPlan} {
		if got, err := ParseTopic(in); err != nil || got != want {
			t.Errorf("ParseTopic(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTopic("Jobs"); err == nil {
		t.Error("ParseTopic(Jobs) accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("zero config accepted")
	}
}
