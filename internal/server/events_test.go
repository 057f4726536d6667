package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// scriptStep is one entry of a scripted sequence and the events it must
// give, as "Topic Type Key".
type scriptStep struct {
	t    structs.MessageType
	req  any
	want []string
}

// eventScript covers every kind of entry: nodes, a job, its placements, a
// plan dropped because its job changed, reports (one for an unknown
// allocation, one repeated), drain, node down, stop, purge, garbage
// collection (an allocation named twice) and server records.
func eventScript() []scriptStep {
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Priority: 50, Count: 2, Version: 1,
		Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	node := func(id string) *structs.Node {
		return &structs.Node{ID: id, Name: id, Capacity: structs.Resources{CPU: 4000, MemoryMB: 4096}}
	}
	alloc := func(id, node string, idx int) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: "web", JobVersion: 1, Name: structs.AllocName("web", idx), Index: idx,
			NodeID: node, Resources: job.Resources, Priority: 50, DesiredStatus: structs.AllocDesiredRun,
			ClientStatus: structs.AllocClientPending, Job: job}
	}
	running := func(id string) *structs.AllocClientUpdate {
		return &structs.AllocClientUpdate{ID: id, ClientStatus: structs.AllocClientRunning,
			TaskState: structs.TaskState{State: structs.TaskStateRunning}}
	}
	scaled := job.Copy()
	scaled.Count = 3
	return []scriptStep{
		{structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: node("n1")}, []string{"Node NodeRegistered n1"}},
		{structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: node("n2")}, []string{"Node NodeRegistered n2"}},
		{structs.JobBatchRequestType, &structs.JobBatchRequest{Writes: []structs.JobWrite{{Register: &structs.JobRegisterRequest{Job: job}}}},
			[]string{"Job JobRegistered web", "Deployment DeploymentStarted web"}},
		{structs.ApplyPlanBatchRequestType, &structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{{
			JobID: "web", JobVersion: 1, Allocs: []*structs.Allocation{alloc("a1", "n1", 0), alloc("a2", "n2", 1)}}}},
			[]string{"Allocation AllocationPlaced a1", "Allocation AllocationPlaced a2", "Plan PlanApplied web"}},
		// Checked against version 7: the placement is not committed.
		{structs.ApplyPlanBatchRequestType, &structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{{
			JobID: "web", JobVersion: 7, Allocs: []*structs.Allocation{alloc("a3", "n1", 2)}}}},
			[]string{"Plan PlanApplied web"}},
		{structs.AllocClientUpdateBatchRequestType, &structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{
			{NodeID: "n1", Updates: []*structs.AllocClientUpdate{running("a1"), running("nope")}},
			{NodeID: "n2", Updates: []*structs.AllocClientUpdate{running("a2")}},
			// a1 reported twice in one entry: one event.
			{NodeID: "n1", Updates: []*structs.AllocClientUpdate{running("a1")}}}},
			[]string{"Allocation AllocationReported a1", "Allocation AllocationReported a2"}},
		{structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: scaled},
			[]string{"Job JobRegistered web", "Deployment DeploymentScaled web"}},
		{structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{NodeID: "n1", Drain: true}, []string{"Node NodeDrain n1"}},
		{structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{NodeID: "n2", Status: structs.NodeStatusDown},
			[]string{"Node NodeStatus n2", "Allocation AllocationUpdated a2"}},
		{structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "web"},
			[]string{"Job JobStopped web", "Allocation AllocationUpdated a1", "Deployment DeploymentStopped web"}},
		{structs.GCRequestType, &structs.GCRequest{Allocs: []structs.GCAllocs{{JobID: "web", ModifyIndex: 10, IDs: []string{"a2", "a2"}}}},
			[]string{"Allocation AllocationDeleted a2"}},
		{structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "web", Purge: true},
			[]string{"Job JobPurged web", "Allocation AllocationDeleted a1"}},
		{structs.ServerMemberUpsertRequestType, &structs.ServerMemberUpsertRequest{Member: &structs.ServerMember{ID: "s1", Name: "s1", RaftAddr: "127.0.0.1:4647", HTTPAddr: "127.0.0.1:4646"}},
			[]string{"Server ServerMemberUpserted s1"}},
		{structs.ServerMemberDeleteRequestType, &structs.ServerMemberDeleteRequest{ID: "s1"}, []string{"Server ServerMemberDeleted s1"}},
	}
}

func newEventFSM(t *testing.T) (*fsm, *stream.Broker) {
	t.Helper()
	f := newTestFSM(t)
	cfg := stream.DefaultConfig()
	cfg.Linger = time.Hour
	b, err := stream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	f.events = b
	return f, b
}

// readEvents reads n events as "index Topic Type Key".
func readEvents(t *testing.T, sub *stream.Subscription, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []string
	for len(got) < n {
		b, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events %q: %v", len(got), got, err)
		}
		if line := b.Line(); line != nil {
			// The line as sent: its groups flattened are the batch's
			// events, in order.
			var wl stream.WireLine
			if err := json.Unmarshal(line, &wl); err != nil {
				t.Fatalf("line %s: %v", line, err)
			}
			wb := wl.Batch()
			if wb.Index != b.Index || len(wb.Events) != len(b.Events) {
				t.Fatalf("line %s decodes to %+v", line, wb)
			}
			for i, w := range wb.Events {
				if e := b.Events[i]; w.Topic != string(e.Topic) || w.Type != e.Type || w.Key != e.Key || w.Namespace != e.Namespace || w.Index != e.Index {
					t.Fatalf("line %s: event %d decodes to %+v, want %s %s %s", line, i, w, e.Topic, e.Type, e.Key)
				}
			}
		}
		for _, e := range b.Events {
			got = append(got, fmt.Sprintf("%d %s %s %s", e.Index, e.Topic, e.Type, e.Key))
			// Every allocation of the script is job web's: a key filter
			// on the job selects it.
			if e.Topic == stream.TopicAllocation && !(&stream.Filter{Keys: []string{"web"}}).Match(e) {
				t.Fatalf("event %s %s: filter keys %q do not name its job", e.Type, e.Key, e.FilterKeys)
			}
			var w stream.WireGroupEvent
			if err := json.Unmarshal(e.Encoded(), &w); err != nil || w.Key != e.Key {
				t.Fatalf("event %s %s encoded as %s (%v)", e.Type, e.Key, e.Encoded(), err)
			}
		}
	}
	return got
}

func TestEventsOfScriptedSequence(t *testing.T) {
	f, b := newEventFSM(t)
	sub, err := b.Subscribe(stream.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var want []string
	for i, step := range eventScript() {
		index := uint64(i + 1)
		if resp := f.Apply(entry(t, index, step.t, step.req)); resp != nil {
			if err, ok := resp.(error); ok {
				t.Fatalf("entry %d: %v", index, err)
			}
		}
		for _, w := range step.want {
			want = append(want, fmt.Sprintf("%d %s", index, w))
		}
	}
	got := readEvents(t, sub, len(want))
	// Within an entry the order is the deriver's; across entries it is
	// the index order.
	if !slices.IsSortedFunc(got, func(a, b string) int { return cmpIndex(a) - cmpIndex(b) }) {
		t.Fatalf("events out of index order:\n%s", strings.Join(got, "\n"))
	}
	sortWithinIndex(got)
	sortWithinIndex(want)
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Resuming after any entry gives exactly the events after it.
	for _, from := range []uint64{0, 3, 9, 13} {
		rs, err := b.Subscribe(stream.SubscribeRequest{Resume: true, Index: from})
		if err != nil {
			t.Fatalf("resume from %d: %v", from, err)
		}
		var tail []string
		for _, w := range want {
			if uint64(cmpIndex(w)) > from {
				tail = append(tail, w)
			}
		}
		got := readEvents(t, rs, len(tail))
		sortWithinIndex(got)
		if !slices.Equal(got, tail) {
			t.Fatalf("resumed from %d:\n%s\nwant:\n%s", from, strings.Join(got, "\n"), strings.Join(tail, "\n"))
		}
		rs.Close()
	}
}

func cmpIndex(s string) int {
	var n int
	_, _ = fmt.Sscanf(s, "%d", &n)
	return n
}

func sortWithinIndex(s []string) {
	slices.SortStableFunc(s, func(a, b string) int {
		if d := cmpIndex(a) - cmpIndex(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
}

// TestEventsNotPublishedWithoutSubscribers: nothing is derived while
// nobody listens, and a later subscriber cannot resume from before.
func TestEventsNotPublishedWithoutSubscribers(t *testing.T) {
	f := newTestFSM(t)
	cfg := stream.DefaultConfig()
	cfg.Linger = 0
	b, err := stream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f.events = b
	for i, step := range eventScript()[:4] {
		f.Apply(entry(t, uint64(i+1), step.t, step.req))
	}
	if st := b.Stats(); st.Batches != 0 || st.Active {
		t.Fatalf("broker holds %d batches (active %v) with nobody subscribed", st.Batches, st.Active)
	}
	_, err = b.Subscribe(stream.SubscribeRequest{Resume: true, Index: 2})
	var se *stream.Error
	if !errors.As(err, &se) || se.Code != stream.CodeIndexTooOld || se.Floor != 4 {
		t.Fatalf("resume from before the subscriber: %v", err)
	}
}

// TestEventsRestoreResets: a snapshot restore ends subscriptions.
func TestEventsRestoreResets(t *testing.T) {
	f, b := newEventFSM(t)
	sub, _ := b.Subscribe(stream.SubscribeRequest{})
	defer sub.Close()
	for i, step := range eventScript()[:3] {
		f.Apply(entry(t, uint64(i+1), step.t, step.req))
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(nopCloser{&sink}); err != nil {
		t.Fatal(err)
	}
	<-sub.Done()
	if e := sub.Err(); e.Code != stream.CodeReset {
		t.Fatalf("after a restore: %v", e)
	}
}

type nopCloser struct{ *memSink }

func (nopCloser) Close() error { return nil }

// TestEventsFromWrites: the events of plans and reports derived from what
// the entry stored (state.AllocWrites) are those derived by reading the
// state after it, for every entry of the script; the store records the
// writes in the order the request names them, so the fast path takes
// every write; an entry that wrote an allocation twice is flagged; and
// writes in another order fall back to the state, losing nothing.
func TestEventsFromWrites(t *testing.T) {
	f := newTestFSM(t)
	fast := 0
	steps := eventScript()
	// Before the script's report batch (which names a1 twice), one that
	// names each allocation once, and an unknown one.
	running := func(id string) *structs.AllocClientUpdate {
		return &structs.AllocClientUpdate{ID: id, ClientStatus: structs.AllocClientRunning}
	}
	steps = slices.Insert(steps, 5, scriptStep{t: structs.AllocClientUpdateBatchRequestType, req: &structs.AllocClientUpdateBatchRequest{
		Nodes: []structs.AllocClientUpdateRequest{
			{NodeID: "n2", Updates: []*structs.AllocClientUpdate{running("a2"), running("nope")}},
			{NodeID: "n1", Updates: []*structs.AllocClientUpdate{running("a1")}}}}})
	for i, step := range steps {
		index := uint64(i + 1)
		l := entry(t, index, step.t, step.req)
		mt := structs.MessageType(l.Data[0])
		var before *state.Snapshot
		if needsBefore(mt) {
			before = f.state.Snapshot()
		}
		w := &state.AllocWrites{}
		f.state.RecordAllocWrites(w)
		resp, req := f.apply(index, mt, l.Data[1:])
		f.state.RecordAllocWrites(nil)
		if err, ok := resp.(error); ok && err != nil {
			t.Fatalf("entry %d: %v", index, err)
		}
		after := f.state.Snapshot()
		derive := func(written []*structs.Allocation, fromWrites bool) ([]string, *deriver) {
			d := &deriver{index: index, before: before, after: after, written: written, fromWrites: fromWrites}
			if err := d.derive(mt, req); err != nil {
				t.Fatalf("entry %d: %v", index, err)
			}
			var out []string
			for _, e := range d.out {
				var p []byte
				if ja, ok := e.Payload.(stream.JSONAppender); ok {
					p = ja.AppendJSON(nil)
				} else {
					var err error
					if p, err = json.Marshal(e.Payload); err != nil {
						t.Fatal(err)
					}
				}
				out = append(out, fmt.Sprintf("%s %s %s %s %q %s", e.Topic, e.Type, e.Key, e.Namespace, e.FilterKeys, p))
			}
			return out, d
		}
		want, _ := derive(nil, false)
		for _, a := range w.Allocs {
			if a.ModifyIndex != index {
				t.Fatalf("entry %d recorded %s of index %d", index, a.ID, a.ModifyIndex)
			}
		}
		if !derivesFromWrites(mt) {
			continue
		}
		if step.t == structs.AllocClientUpdateBatchRequestType && step.want != nil {
			// The script's report batch names a1 twice.
			if !w.Again {
				t.Fatalf("entry %d wrote a1 twice, not flagged", index)
			}
			continue
		}
		if w.Again {
			t.Fatalf("entry %d flagged as writing an allocation twice", index)
		}
		got, d := derive(w.Allocs, true)
		if !d.fromWrites || len(d.written) != 0 {
			t.Fatalf("entry %d: writes not taken in the order named (%d left)", index, len(d.written))
		}
		fast++
		if !slices.Equal(got, want) {
			t.Fatalf("entry %d from writes:\n%s\nfrom the state:\n%s", index, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(w.Allocs) > 1 {
			rev := slices.Clone(w.Allocs)
			slices.Reverse(rev)
			got, d := derive(rev, true)
			if d.fromWrites {
				t.Fatalf("entry %d: writes in reverse order taken as they were", index)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("entry %d from writes in reverse:\n%s\nfrom the state:\n%s", index, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	if fast < 3 {
		t.Fatalf("%d entries derived from their writes, want the script's plans and the added report", fast)
	}
}

// An allocation's summary leaves out its create index when it is the
// event's index (a placement) and carries it otherwise; an agent's report
// carries the allocation's name and its client status and description.
func TestAllocEventCreateIndex(t *testing.T) {
	a := &structs.Allocation{ID: "a1", Name: "web[0]", JobID: "web", JobVersion: 2, NodeID: "n1",
		DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending, CreateIndex: 7, ModifyIndex: 7, ModifyTime: 5}
	const placed = `{"name":"web[0]","job_id":"web","job_version":2,"node_id":"n1","desired_status":"run","client_status":"pending","modify_time":5}`
	if got := string(allocEvent{a}.AppendJSON(nil)); got != placed {
		t.Errorf("placed:\n got %s\nwant %s", got, placed)
	}
	b := *a
	b.ModifyIndex, b.ClientStatus = 9, structs.AllocClientRunning
	const updated = `{"name":"web[0]","job_id":"web","job_version":2,"node_id":"n1","desired_status":"run","client_status":"running","create_index":7,"modify_time":5}`
	if got := string(allocEvent{&b}.AppendJSON(nil)); got != updated {
		t.Errorf("updated:\n got %s\nwant %s", got, updated)
	}
	b.ClientDescription = "started"
	const reported = `{"name":"web[0]","client_status":"running","client_description":"started"}`
	if got := string(allocReport{&b}.AppendJSON(nil)); got != reported {
		t.Errorf("reported:\n got %s\nwant %s", got, reported)
	}
}
