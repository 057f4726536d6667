package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

func newTestFSM(t *testing.T) *fsm {
	t.Helper()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	return &fsm{state: st, logger: slog.New(slog.DiscardHandler)}
}

func entry(t *testing.T, index uint64, mt structs.MessageType, req any) *raft.Log {
	t.Helper()
	b, err := encodeEntry(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: b}
}

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.canceled = true; return nil }

func TestFSMApplySnapshotRestore(t *testing.T) {
	f := newTestFSM(t)
	job := &structs.Job{Name: "web", Count: 2, Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	job.Canonicalize()
	alloc := func(id string, idx int) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: "web", NodeID: "n1", Index: idx, Job: job,
			Resources: job.Resources, DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending}
	}
	entries := []*raft.Log{
		entry(t, 3, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{
			Node: &structs.Node{ID: "n1", Name: "one", Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}, Time: 10}),
		entry(t, 4, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{
			Node: &structs.Node{ID: "n2", Name: "two", Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}, Time: 11}),
		entry(t, 5, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}),
		entry(t, 6, structs.ApplyPlanRequestType, &structs.ApplyPlanRequest{JobID: "web",
			Allocs:  []*structs.Allocation{alloc("a1", 0), alloc("a2", 1)},
			Failure: &structs.PlacementFailure{Unplaced: 1, Message: "no room"}, Time: 12}),
		entry(t, 7, structs.AllocClientUpdateRequestType, &structs.AllocClientUpdateRequest{NodeID: "n1",
			Updates: []*structs.AllocClientUpdate{{ID: "a1", ClientStatus: structs.AllocClientFailed}}, Time: 13}),
		entry(t, 8, structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{NodeID: "n2", Drain: true, Time: 14}),
		entry(t, 9, structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{NodeID: "n1", Status: structs.NodeStatusDown, Time: 15}),
		entry(t, 10, structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "web", Time: 16}),
	}
	for _, e := range entries {
		resp := f.Apply(e)
		if err, ok := resp.(error); ok {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
	}
	if res, ok := f.Apply(entry(t, 11, structs.AllocClientUpdateRequestType, &structs.AllocClientUpdateRequest{NodeID: "n1"})).(*fsmResult); !ok || len(res.terminal) != 0 {
		t.Fatalf("empty client update: %+v", res)
	}

	snap := f.state.Snapshot()
	if a := snap.AllocByID("a2"); a.ClientStatus != structs.AllocClientLost {
		t.Fatalf("a2 on down node: %s", a.ClientStatus)
	}
	if j := snap.JobByID("web"); !j.Stop {
		t.Fatal("job not stopped")
	}

	fs, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := fs.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v closed %v", err, sink.closed)
	}
	fs.Release()

	g := newTestFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if a, b := dumpState(t, f.state), dumpState(t, g.state); a != b {
		t.Fatalf("restored state differs:\n%s\n---\n%s", a, b)
	}
}

func TestFSMBadEntries(t *testing.T) {
	f := newTestFSM(t)
	tests := []struct {
		name string
		log  *raft.Log
	}{
		{"empty", &raft.Log{Index: 1, Type: raft.LogCommand}},
		{"unknown type", &raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{200, '{', '}'}}},
		{"bad json", &raft.Log{Index: 3, Type: raft.LogCommand, Data: []byte{byte(structs.JobRegisterRequestType), '{'}}},
		{"job without id", entry(t, 4, structs.JobRegisterRequestType, &structs.JobRegisterRequest{})},
		{"node register without node", entry(t, 5, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{})},
		{"status of unknown node", entry(t, 6, structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{NodeID: "x"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := f.Apply(tc.log).(error); !ok {
				t.Fatal("want an error response")
			}
		})
	}
	if got := f.state.Snapshot().Index(); got != 0 {
		t.Fatalf("bad entries changed state to index %d", got)
	}
	// Non-command entries (configuration, no-ops) are ignored.
	if resp := f.Apply(&raft.Log{Index: 7, Type: raft.LogNoop}); resp != nil {
		t.Fatalf("noop: %v", resp)
	}
}

func dumpState(t *testing.T, s *state.Store) string {
	t.Helper()
	snap := s.Snapshot()
	b, err := json.Marshal(map[string]any{
		"nodes": snap.Nodes(), "jobs": snap.Jobs(), "allocs": snap.Allocs(),
		"failures": snap.PlacementFailures(), "index": snap.Index(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFSMBinaryEntriesMatchJSON applies the same plans and reports once as
// the binary entries the server proposes and once as the JSON entries of
// older logs: both must still apply, to the same state.
func TestFSMBinaryEntriesMatchJSON(t *testing.T) {
	job := &structs.Job{Name: "web", Count: 3, Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	job.Canonicalize()
	const node = "9b2c7e3a-0000-4000-8000-000000000001"
	alloc := func(id string, idx int) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: "web", Name: structs.AllocName("web", idx), Index: idx,
			NodeID: node, NodeName: "one", Resources: job.Resources, Priority: job.Priority,
			DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending, CreateTime: 12, ModifyTime: 12}
	}
	plans := &structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{
		{JobID: "web", Time: 12, Allocs: []*structs.Allocation{
			alloc("4f1d2c3b-0000-4a5b-8c6d-000000000001", 0), alloc("a2", 1)}},
		{JobID: "web", Time: 12, Allocs: []*structs.Allocation{alloc("a3", 2)},
			Failure: &structs.PlacementFailure{Unplaced: 1, Message: "no room", NodesExhausted: map[string]int{"cpu": 1}}},
	}}
	reports := &structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{{NodeID: node, Time: 13,
		Updates: []*structs.AllocClientUpdate{
			{ID: "4f1d2c3b-0000-4a5b-8c6d-000000000001", ClientStatus: structs.AllocClientRunning,
				TaskState: structs.TaskState{State: structs.TaskStateRunning, StartedAt: 13, PID: 7,
					Events: []structs.TaskEvent{{Time: 13, Type: "Started", Message: "task started"}}}},
			{ID: "a2", ClientStatus: structs.AllocClientFailed, ClientDescription: "exit 1",
				TaskState: structs.TaskState{State: structs.TaskStateDead, ExitCode: 1, Failed: true, FinishedAt: 13}},
		}}}}
	single := &structs.ApplyPlanRequest{JobID: "web", Time: 14,
		Allocs: []*structs.Allocation{alloc("a4", 3)}}

	run := func(enc func(structs.MessageType, any) ([]byte, error)) (*fsm, []structs.MessageType) {
		f := newTestFSM(t)
		var types []structs.MessageType
		for i, e := range []struct {
			mt  structs.MessageType
			req any
		}{
			{structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: &structs.Node{ID: node, Name: "one",
				Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}, Time: 10}},
			{structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}},
			{structs.ApplyPlanBatchRequestType, plans},
			{structs.AllocClientUpdateBatchRequestType, reports},
			{structs.ApplyPlanRequestType, single},
		} {
			b, err := enc(e.mt, e.req)
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, structs.MessageType(b[0]))
			resp := f.Apply(&raft.Log{Index: uint64(i + 3), Type: raft.LogCommand, Data: b})
			if err, ok := resp.(error); ok {
				t.Fatalf("entry %d (type %d): %v", i, b[0], err)
			}
			if res, ok := resp.(*fsmResult); ok && e.mt == structs.AllocClientUpdateBatchRequestType && len(res.terminal) != 1 {
				t.Fatalf("report entry: %d terminal allocations, want 1", len(res.terminal))
			}
		}
		return f, types
	}
	bin, binTypes := run(encodeEntry)
	old, oldTypes := run(encodeJSONEntry)
	wantBin := []structs.MessageType{structs.NodeRegisterRequestType, structs.JobRegisterRequestType,
		structs.ApplyPlanBatchBinaryType, structs.AllocClientUpdateBatchBinaryType, structs.ApplyPlanBatchBinaryType}
	if !slices.Equal(binTypes, wantBin) {
		t.Fatalf("proposed types %v, want %v", binTypes, wantBin)
	}
	if slices.Contains(oldTypes, structs.ApplyPlanBatchBinaryType) {
		t.Fatalf("JSON types %v", oldTypes)
	}
	if a, b := dumpState(t, bin.state), dumpState(t, old.state); a != b {
		t.Fatalf("binary entries give another state than JSON ones:\n%s\n---\n%s", a, b)
	}
	if n := len(bin.state.Snapshot().AllocsByJob("web")); n != 4 {
		t.Fatalf("%d allocations, want 4", n)
	}
}

// TestFSMBadBinaryEntries: a damaged binary entry is refused with an error
// naming what is wrong, and changes nothing.
func TestFSMBadBinaryEntries(t *testing.T) {
	f := newTestFSM(t)
	plan, err := encodeEntry(structs.ApplyPlanRequestType, &structs.ApplyPlanRequest{JobID: "web",
		Allocs: []*structs.Allocation{{ID: "a1", JobID: "web", NodeID: "n1"}}})
	if err != nil {
		t.Fatal(err)
	}
	report, err := encodeEntry(structs.AllocClientUpdateBatchRequestType, &structs.AllocClientUpdateBatchRequest{
		Nodes: []structs.AllocClientUpdateRequest{{NodeID: "n1", Updates: []*structs.AllocClientUpdate{{ID: "a1"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"plan cut", plan[:len(plan)-2], "decoding plan batch"},
		{"plan version", append([]byte{plan[0], 9}, plan[2:]...), "unknown encoding version 9"},
		{"report cut", report[:len(report)-1], "decoding report batch"},
		{"report trailing", append(slices.Clone(report), 1), "trailing bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, ok := f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: tc.data}).(error)
			if !ok || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("response %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if got := f.state.Snapshot().Index(); got != 0 {
		t.Fatalf("bad entries changed state to index %d", got)
	}
}
