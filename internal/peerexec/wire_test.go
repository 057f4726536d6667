package peerexec

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// wireSamples are messages of every kind, as the engine makes them.
func wireSamples() []*Message {
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Count: 2, Driver: "mock",
		Resources: structs.Resources{CPU: 20, MemoryMB: 64}, Priority: 60}
	node := &structs.Node{ID: "a", Name: "a", Capacity: structs.Resources{CPU: 1000, MemoryMB: 4096},
		Labels: map[string]string{"zone": "a"}, Attributes: map[string]string{"driver.mock": "1"}, Status: structs.NodeStatusReady}
	alloc := func(id string, i int) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: "web", Name: structs.AllocName("web", i), Index: i, NodeID: "b",
			Resources: job.Resources, Priority: 60, DesiredStatus: structs.AllocDesiredRun,
			ClientStatus: structs.AllocClientPending, CreateTime: 1765000000000000000 + int64(i), CreateIndex: uint64(100 + i)}
	}
	ts := structs.TaskState{State: structs.TaskStateDead, Restarts: 1, ExitCode: 2, Failed: true, StartedAt: 5, FinishedAt: 9, PID: 77,
		Events: []structs.TaskEvent{{Time: 4, Type: "Started"}, {Time: 9, Type: "Terminated", Message: "exit 2"}}}
	return []*Message{
		{Type: MsgLoad, From: "a", Inc: "i1", Load: &Load{Node: node, Used: structs.Resources{CPU: 40, MemoryMB: 128}, Tasks: 2,
			HTTPAddr: "127.0.0.1:4646", State: StateUp, Seq: 9, Version: 3, Wire: WireVersion}},
		{Type: MsgLoad, From: "a", Inc: "i1", Load: &Load{Used: structs.Resources{CPU: 60}, Tasks: 3, State: StateLeaving, Seq: 10, Version: 4, Delta: true}},
		{Type: MsgAdmit, From: "o", Inc: "i2", Job: job, Allocs: []*structs.Allocation{alloc("x-1", 0), alloc("4f1d2c3b-0a1b-4a5b-8c6d-0123456789ab", 1)}},
		{Type: MsgAdmitted, From: "b", Inc: "i3", Admitted: &Admitted{AllocID: "x-1", OK: true, Seq: 1, Used: structs.Resources{CPU: 20, MemoryMB: 64}}},
		{Type: MsgAdmitted, From: "b", Inc: "i3", Answers: []Admitted{{AllocID: "x", OK: true, Seq: 2}, {AllocID: "y", Reason: "out of cpu", Full: true, Seq: 2}}},
		{Type: MsgStop, From: "o", Inc: "i2", Stop: []StopRequest{{AllocID: "x", JobID: "web", Description: "scaled down"}, {AllocID: "y", JobID: "web"}}},
		{Type: MsgReport, From: "b", Inc: "i3", Report: &Report{Seq: 4, Slots: [][2]uint16{{0, 5460}, {16000, 16383}}, Delta: true,
			Tasks: []TaskReport{
				{AllocID: "x", JobID: "web", JobVersion: 2, Name: "web[0]", Resources: job.Resources, Priority: 60,
					ClientStatus: structs.AllocClientFailed, DesiredStop: true, TaskState: ts, CreateTime: 11, CreateIndex: 12, RescheduleCount: 1, Previous: "w"},
				{AllocID: "y", JobID: "web", Name: "web[1]", Index: 1, ClientStatus: structs.AllocClientRunning,
					TaskState: structs.TaskState{State: structs.TaskStateRunning}},
			}}},
		{Type: MsgReport, From: "b", Inc: "i3", Report: &Report{Seq: 0, Slots: [][2]uint16{}, Tasks: []TaskReport{}}},
		// not in a binary form: these go as JSON entries of a binary batch
		{Type: MsgAdmit, From: "o", Alloc: func() *structs.Allocation { a := alloc("z", 3); a.Job = job; return a }()},
		{Type: MsgStop, From: "o", Stop: []StopRequest{{AllocID: "x", JobID: "web"}}, Report: &Report{}},
	}
}

// TestBinaryBatchMatchesJSON: a binary batch decodes to what the JSON
// batch of the same messages decodes to, and is smaller.
func TestBinaryBatchMatchesJSON(t *testing.T) {
	ms := wireSamples()
	bin, err := EncodeBinaryBatch(ms)
	if err != nil {
		t.Fatal(err)
	}
	js, err := EncodeBatch(ms)
	if err != nil {
		t.Fatal(err)
	}
	got, binary, err := decodeBatch(bin)
	if err != nil || !binary {
		t.Fatalf("decode binary: %v (binary %v)", err, binary)
	}
	want, binary, err := decodeBatch(js)
	if err != nil || binary {
		t.Fatalf("decode JSON: %v (binary %v)", err, binary)
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("message %d (%s):\nbinary %s\nJSON   %s", i, want[i].Type, g, w)
		}
	}
	if len(bin) >= len(js)*2/3 {
		t.Errorf("binary batch %d bytes, JSON %d", len(bin), len(js))
	}
	for i, m := range ms[:8] {
		if !wireForm(m) {
			t.Errorf("sample %d (%s) has no binary form", i, m.Type)
		}
	}
}

func TestDecodeBinaryRejects(t *testing.T) {
	one := func(m *Message) []byte {
		b, err := EncodeBinaryBatch([]*Message{m})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := one(wireSamples()[6])
	entry := func(e ...byte) []byte { return append([]byte{wireV1, 1, byte(len(e))}, e...) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"unknown version", append([]byte{0x03}, good[1:]...)},
		{"no count", []byte{wireV1}},
		{"count beyond the bytes", []byte{wireV1, 5, 1, wtStop}},
		{"count over the limit", []byte{wireV1, 0xff, 0xff, 0xff, 0x7f}},
		{"truncated", good[:len(good)-4]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"empty entry", []byte{wireV1, 1, 0}},
		{"unknown type", entry(9, 1, 'a', 0)},
		{"stop without stops", entry(wtStop, 1, 'a', 0, 0)},
		{"stop count beyond the bytes", entry(wtStop, 1, 'a', 0, 100)},
		{"bytes after an entry", entry(wtStop, 1, 'a', 0, 1, 1, 'x', 1, 'j', 0, 7)},
		{"no sender", one(&Message{Type: MsgStop, Stop: []StopRequest{{AllocID: "x", JobID: "j"}}})},
		{"string over the limit", entry(wtStop, 0xff, 0xff, 0xff, 0x7f)},
		{"unknown load flags", entry(wtLoad, 1, 'a', 0, 8)},
		{"load without node", entry(wtLoad, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"admitted form", entry(wtAdmitted, 1, 'a', 0, 2)},
		{"slot out of range", entry(wtReport, 1, 'a', 0, 0, 0, 2, 0, 0x80, 0x80, 0x01, 1)},
		{"slot range backwards", one(&Message{Type: MsgReport, From: "a", Report: &Report{Slots: [][2]uint16{{9, 3}}}})},
		{"task without job", one(&Message{Type: MsgReport, From: "a", Report: &Report{Tasks: []TaskReport{{AllocID: "x"}}}})},
		{"admit of a copy of another job", one(&Message{Type: MsgAdmit, From: "a", Job: &structs.Job{ID: "j"}, Allocs: []*structs.Allocation{{ID: "x", JobID: "k"}}})},
		{"bad JSON entry", []byte{wireV1, 1, 2, '{', 'x'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBatch(tc.in); err == nil {
				t.Errorf("accepted % x", tc.in)
			}
		})
	}
}

// FuzzDecodeBinaryBatch: any input is decoded or refused, never a crash;
// what decodes encodes to the same bytes again after one round.
func FuzzDecodeBinaryBatch(f *testing.F) {
	for _, m := range wireSamples() {
		b, err := EncodeBinaryBatch([]*Message{m})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	all, _ := EncodeBinaryBatch(wireSamples())
	f.Add(all)
	f.Add([]byte{wireV1, 1, 3, wtStop, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, binary, err := decodeBatch(append([]byte{wireV1}, b...))
		if err != nil {
			return
		}
		if !binary {
			t.Fatal("a binary batch decoded as JSON")
		}
		again, err := EncodeBinaryBatch(ms)
		if err != nil {
			t.Fatalf("encode a decoded batch: %v", err)
		}
		ms2, err := DecodeBatch(again)
		if err != nil {
			t.Fatalf("decode its encoding: %v", err)
		}
		third, err := EncodeBinaryBatch(ms2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(third, again) {
			t.Fatalf("encoding not stable:\n% x\n% x", again, third)
		}
	})
}

// TestPacketsByEncoding: a peer gets binary batches once it said it
// reads them (a load with Wire, or a binary batch), JSON before and
// after a load without Wire (a peer of the previous version); a message
// sent to several peers is encoded once.
func TestPacketsByEncoding(t *testing.T) {
	s := &Service{logger: log.New(io.Discard, "", 0)}
	load := wireSamples()[0]
	old := *load
	oldLoad := *load.Load
	oldLoad.Wire = 0
	old.Load = &oldLoad
	s.noteWire([]*Message{load}, false)                       // "a" reads binary
	s.noteWire([]*Message{{From: "b"}}, true)                 // "b" sent a binary batch
	s.noteWire([]*Message{&old}, false)                       // the same load from "a" without Wire: JSON again
	s.noteWire([]*Message{{From: "c", Type: MsgStop}}, false) // JSON but no load: unknown, JSON
	if s.wire["a"] || !s.wire["b"] || s.wire["c"] {
		t.Fatalf("wire %v", s.wire)
	}
	shared := wireSamples()[1]
	s.outbox = map[string][]*Message{"a": {shared}, "b": {shared, wireSamples()[6]}, "c": {shared}}
	ps := s.packets()
	if len(ps) != 3 {
		t.Fatalf("%d packets", len(ps))
	}
	for _, p := range ps {
		if got, want := p.b[0] == wireV1, p.to == "b"; got != want {
			t.Errorf("packet to %s: binary %v", p.to, got)
		}
		ms, err := DecodeBatch(p.b)
		if err != nil || !reflect.DeepEqual(ms[0], shared) {
			t.Errorf("packet to %s: %v %+v", p.to, err, ms)
		}
	}
	if !strings.HasPrefix(string(ps[0].b), "[") && ps[0].to != "b" {
		t.Errorf("JSON packet %q", ps[0].b)
	}
}
