package stream

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// AppendString writes what encoding/json writes, byte for byte.
func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "web", "4f1d2c3b-0000-4a5b-8c6d-000000000001", `quote " and \ backslash`,
		"line\nbreak\ttab\rcr\bbs\fff", "\x00\x01\x1f\x7f", "<script>&amp;</script>",
		"é ü 日本 🚀", "\u2028\u2029", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate",
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "web", "a\"b\\c\n", "<&>", "\u2028", "\xff\xfe", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendString([]byte("x"), s)
		if string(got[1:]) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}

type appenderPayload struct{ id string }

func (p appenderPayload) AppendJSON(dst []byte) []byte {
	o := OpenObject(dst)
	o.String("id", p.id)
	o.Int("n", -3)
	o.Uint("u", 7)
	o.StringOmitEmpty("empty", "")
	return o.Close()
}

// The event's encoding is the wire shape, whether the payload writes
// itself or goes through encoding/json.
func TestEventEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Event
		want string
	}{
		{"appender", Event{Topic: TopicAllocation, Type: "AllocationPlaced", Key: "a<1>", Namespace: "default", Index: 12,
			Payload: appenderPayload{id: "a\"1"}},
			`{"key":"a\u003c1\u003e","payload":{"id":"a\"1","n":-3,"u":7}}`},
		{"json", Event{Topic: TopicJob, Type: "JobPurged", Key: "web", Index: 3, Payload: map[string]string{"id": "web"}},
			`{"key":"web","payload":{"id":"web"}}`},
		{"no payload", Event{Topic: TopicNode, Type: "NodeDrain", Key: "n1", Index: 4},
			`{"key":"n1"}`},
		{"null payload", Event{Topic: TopicNode, Type: "NodeDrain", Key: "n1", Index: 4, Payload: (*struct{})(nil)},
			`{"key":"n1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.e.appendJSON([]byte("before"), tc.e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			tc.e.encoded = b[len("before"):]
			if got := string(tc.e.Encoded()); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			var w WireGroupEvent
			if err := json.Unmarshal(tc.e.Encoded(), &w); err != nil {
				t.Fatalf("not a WireGroupEvent: %v", err)
			}
			if w.Key != tc.e.Key {
				t.Errorf("decoded %+v", w)
			}
		})
	}
	bad := Event{Topic: TopicJob, Type: "JobPurged", Key: "web", Payload: func() {}}
	if _, err := bad.appendJSON(nil, bad.Payload); err == nil {
		t.Error("a payload encoding/json cannot encode gave no error")
	}
}

// A subscriber that asks for full payloads gets them, for events the
// broker encoded before it came too; the others get the summary, and
// the full encoding is made only while someone wants it.
func TestFullPayload(t *testing.T) {
	b := newTestBroker(t, Config{})
	full := func(index uint64) DeriveFunc {
		return func() []*Event {
			return []*Event{{Topic: TopicAllocation, Type: "AllocationPlaced", Key: "a",
				Payload: map[string]string{"id": "a"}, Full: map[string]string{"id": "a", "job": "web"}}}
		}
	}
	plain, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	b.Want(1)
	b.Publish(1, full(1))
	waitIndex(t, b, 1)
	fs, err := b.Subscribe(SubscribeRequest{Resume: true, Index: 0, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if got := b.full.Load(); got != 1 {
		t.Fatalf("full subscribers = %d, want 1", got)
	}
	b.Want(2)
	b.Publish(2, full(2))
	const sum, whole = `"payload":{"id":"a"}}`, `"payload":{"id":"a","job":"web"}}`
	for i := range 2 {
		pb, err := plain.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fb, err := fs.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := string(pb.Events[0].EncodedFor(plain.Full())); !hasSuffix(got, sum) {
			t.Errorf("entry %d, plain subscriber: %s", i+1, got)
		}
		if got := string(fb.Events[0].EncodedFor(fs.Full())); !hasSuffix(got, whole) {
			t.Errorf("entry %d, full subscriber: %s", i+1, got)
		}
		// Encoded ahead only once a full subscriber existed.
		if ahead := fb.Events[0].encodedFull != nil; ahead != (i == 1) {
			t.Errorf("entry %d: full encoding made ahead = %v", i+1, ahead)
		}
	}
	fs.Close()
	if got := b.full.Load(); got != 0 {
		t.Errorf("full subscribers after close = %d, want 0", got)
	}
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// TryNext returns what is ready without waiting, skipping batches the
// filter rejects, and the error once the subscription ended.
func TestTryNext(t *testing.T) {
	b := newTestBroker(t, Config{})
	s, err := b.Subscribe(SubscribeRequest{Filter: Filter{Keys: []string{"a-2-0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if batch, err := s.TryNext(); batch != nil || err != nil {
		t.Fatalf("empty ring: %v, %v", batch, err)
	}
	publish(b, 1, 3, 1)
	waitIndex(t, b, 3)
	batch, err := s.TryNext()
	if err != nil || batch == nil || batch.Index != 2 {
		t.Fatalf("got %+v, %v; want the batch at 2", batch, err)
	}
	if batch, err := s.TryNext(); batch != nil || err != nil {
		t.Fatalf("after the match: %v, %v", batch, err)
	}
	if got := s.LastIndex(); got != 3 {
		t.Errorf("last index %d, want 3 (entry 3 looked at)", got)
	}
	s.Close()
	if _, err := s.TryNext(); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

// A batch's line is the stream's line for the entry, its events' encodings
// slices of it; a subscriber that filters some events out gets a batch
// without one.
func TestBatchLine(t *testing.T) {
	b := newTestBroker(t, Config{})
	all, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	some, err := b.Subscribe(SubscribeRequest{Filter: Filter{Keys: []string{"a-7-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer some.Close()
	b.Want(7)
	b.Publish(7, func() []*Event {
		evs := events(7, 3)()
		evs = append(evs, &Event{Topic: TopicJob, Type: "JobPurged", Key: "bad", Payload: func() {}}) // not encodable: left out
		return evs
	})
	batch, err := all.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"index":7,"groups":[{"topic":"Allocation","type":"AllocationPlaced","events":[` +
		`{"key":"a-7-0","payload":{"i":0}},` +
		`{"key":"a-7-1","payload":{"i":1}},` +
		`{"key":"a-7-2","payload":{"i":2}}]}]}` + "\n"
	if got := string(batch.Line()); got != want {
		t.Errorf("line:\n%s\nwant\n%s", got, want)
	}
	if len(batch.Events) != 3 {
		t.Fatalf("%d events, want 3", len(batch.Events))
	}
	var wl WireLine
	if err := json.Unmarshal(batch.Line(), &wl); err != nil {
		t.Fatal(err)
	}
	if wb := wl.Batch(); len(wb.Events) != 3 || wb.Events[1].Key != "a-7-1" || wb.Events[1].Index != 7 || wb.Events[1].Type != "AllocationPlaced" {
		t.Errorf("line decodes to %+v", wb)
	}
	sb, err := some.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sb.Line() != nil || len(sb.Events) != 1 || string(sb.Events[0].Encoded()) != string(batch.Events[1].Encoded()) {
		t.Errorf("filtered batch: line %q, events %d", sb.Line(), len(sb.Events))
	}
}

// plainWord agrees with the byte table for every byte at every position,
// and for every pair of neighbouring bytes (where a borrow could carry a
// flag from one byte to the next).
func TestPlainWord(t *testing.T) {
	word := func(b [8]byte) uint64 {
		var x uint64
		for i := range b {
			x |= uint64(b[i]) << (8 * i)
		}
		return x
	}
	fill := [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
	for pos := range 7 {
		for c1 := range 256 {
			for c2 := range 256 {
				b := fill
				b[pos], b[pos+1] = byte(c1), byte(c2)
				if got, want := plainWord(word(b)), plain[c1] && plain[c2]; got != want {
					t.Fatalf("plainWord(%q) = %v, want %v", b[:], got, want)
				}
			}
		}
	}
}

// A line groups each run of events of one topic, type and namespace; a
// run broken by another kind of event starts a new group, so the order
// of events is the line's order.
func TestBatchLineGroups(t *testing.T) {
	b := newTestBroker(t, Config{})
	all, err := b.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	ev := func(topic Topic, typ, key, ns string) *Event {
		return &Event{Topic: topic, Type: typ, Key: key, Namespace: ns}
	}
	b.Want(3)
	b.Publish(3, func() []*Event {
		return []*Event{
			ev(TopicAllocation, "AllocationPlaced", "a1", "default"),
			ev(TopicAllocation, "AllocationPlaced", "a2", "default"),
			ev(TopicAllocation, "AllocationPlaced", "a3", "team-a"),
			ev(TopicPlan, "PlanApplied", "web", "default"),
			{Topic: TopicJob, Type: "JobPurged", Key: "bad", Payload: func() {}}, // not encodable: left out
			ev(TopicAllocation, "AllocationPlaced", "a4", "default"),
			ev(TopicAllocation, "AllocationUpdated", "a5", "default"),
			ev(TopicNode, "NodeDrain", "n1", ""),
		}
	})
	batch, err := all.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"index":3,"groups":[` +
		`{"topic":"Allocation","type":"AllocationPlaced","namespace":"default","events":[{"key":"a1"},{"key":"a2"}]},` +
		`{"topic":"Allocation","type":"AllocationPlaced","namespace":"team-a","events":[{"key":"a3"}]},` +
		`{"topic":"Plan","type":"PlanApplied","namespace":"default","events":[{"key":"web"}]},` +
		`{"topic":"Allocation","type":"AllocationPlaced","namespace":"default","events":[{"key":"a4"}]},` +
		`{"topic":"Allocation","type":"AllocationUpdated","namespace":"default","events":[{"key":"a5"}]},` +
		`{"topic":"Node","type":"NodeDrain","events":[{"key":"n1"}]}]}` + "\n"
	if got := string(batch.Line()); got != want {
		t.Errorf("line:\n%s\nwant\n%s", got, want)
	}
	var wl WireLine
	if err := json.Unmarshal(batch.Line(), &wl); err != nil {
		t.Fatal(err)
	}
	wb := wl.Batch()
	if len(wb.Events) != len(batch.Events) {
		t.Fatalf("%d events decoded, %d in the batch", len(wb.Events), len(batch.Events))
	}
	for i, w := range wb.Events {
		e := batch.Events[i]
		if w.Topic != string(e.Topic) || w.Type != e.Type || w.Key != e.Key || w.Namespace != e.Namespace || w.Index != 3 || w.Payload != nil {
			t.Errorf("event %d decodes to %+v, want %s %s %s %q", i, w, e.Topic, e.Type, e.Key, e.Namespace)
		}
	}
}

// A line of a server before groups (its events whole) reads as the same
// batch.
func TestWireLineFlatEvents(t *testing.T) {
	const old = `{"index":12,"events":[{"topic":"Allocation","type":"AllocationPlaced","key":"a1","namespace":"default","index":12,"payload":{"name":"web[0]"}},{"topic":"Plan","type":"PlanApplied","key":"web","index":12}]}`
	var wl WireLine
	if err := json.Unmarshal([]byte(old), &wl); err != nil {
		t.Fatal(err)
	}
	wb := wl.Batch()
	if wb.Index != 12 || len(wb.Events) != 2 || wb.Events[0].Key != "a1" || wb.Events[0].Namespace != "default" ||
		string(wb.Events[0].Payload) != `{"name":"web[0]"}` || wb.Events[1].Type != "PlanApplied" || wb.Events[1].Index != 12 {
		t.Errorf("decoded %+v", wb)
	}
}
