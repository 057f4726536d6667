package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
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
