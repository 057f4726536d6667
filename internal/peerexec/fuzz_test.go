package peerexec

import (
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// FuzzDecode: any input gives a message that passes the checks or an
// error, never a panic; a decoded message encodes and decodes again.
func FuzzDecode(f *testing.F) {
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Count: 2, Driver: "mock"}
	seeds := []*Message{
		{Type: MsgLoad, From: "a", Inc: "1", Load: &Load{Node: &structs.Node{ID: "a", Capacity: structs.Resources{CPU: 1}}, Seq: 3}},
		{Type: MsgAdmit, From: "a", Alloc: &structs.Allocation{ID: "x", JobID: "web", Job: job}},
		{Type: MsgAdmitted, From: "b", Admitted: &Admitted{AllocID: "x", OK: true, Seq: 1}},
		{Type: MsgAdmit, From: "a", Job: job, Allocs: []*structs.Allocation{{ID: "x", JobID: "web"}, {ID: "y", JobID: "web"}}},
		{Type: MsgAdmitted, From: "b", Answers: []Admitted{{AllocID: "x", OK: true, Seq: 1}, {AllocID: "y", Reason: "full", Full: true}}},
		{Type: MsgStop, From: "a", Stop: []StopRequest{{AllocID: "x", JobID: "web"}}},
		{Type: MsgReport, From: "b", Report: &Report{Seq: 2, Slots: [][2]uint16{{0, 100}}, Tasks: []TaskReport{{AllocID: "x", JobID: "web"}}}},
	}
	for _, m := range seeds {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"report","from":"b","report":{"slots":[[5,2]]}}`))
	f.Add([]byte(`{"type":"admit","from":"a","alloc":{"id":"x"}}`))
	f.Add([]byte(`{"type":"nope","from":"a"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("encode a decoded message: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("decode its encoding: %v", err)
		}
	})
}

// FuzzDecodeBatch: the same for packets of several messages.
func FuzzDecodeBatch(f *testing.F) {
	b, err := EncodeBatch([]*Message{
		{Type: MsgAdmitted, From: "b", Admitted: &Admitted{AllocID: "x", OK: true, Seq: 1}},
		{Type: MsgStop, From: "a", Stop: []StopRequest{{AllocID: "x", JobID: "web"}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(` [{"type":"stop","from":"a"}]`))
	f.Add([]byte(`{"type":"nope","from":"a"}`))
	f.Add([]byte(`[[[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := DecodeBatch(b)
		if err != nil {
			return
		}
		again, err := EncodeBatch(ms)
		if err != nil {
			t.Fatalf("encode a decoded batch: %v", err)
		}
		if _, err := DecodeBatch(again); err != nil {
			t.Fatalf("decode its encoding: %v", err)
		}
	})
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not json", `{`},
		{"no sender", `{"type":"load","load":{"node":{}}}`},
		{"unknown type", `{"type":"x","from":"a"}`},
		{"load without node", `{"type":"load","from":"a","load":{}}`},
		{"admit without job", `{"type":"admit","from":"a","alloc":{"id":"x","job_id":"j"}}`},
		{"admit of several without job", `{"type":"admit","from":"a","allocs":[{"id":"x","job_id":"j"}]}`},
		{"admit of another job's copy", `{"type":"admit","from":"a","job":{"id":"j"},"allocs":[{"id":"x","job_id":"k"}]}`},
		{"admit of a copy without ID", `{"type":"admit","from":"a","job":{"id":"j"},"allocs":[{"job_id":"j"}]}`},
		{"admit of a null copy", `{"type":"admit","from":"a","job":{"id":"j"},"allocs":[null]}`},
		{"admit in both forms", `{"type":"admit","from":"a","alloc":{"id":"x","job_id":"j","job":{"id":"j"}},"job":{"id":"j"},"allocs":[{"id":"y","job_id":"j"}]}`},
		{"admitted without answers", `{"type":"admitted","from":"a","answers":[]}`},
		{"answer without allocation", `{"type":"admitted","from":"a","answers":[{"ok":true}]}`},
		{"batch with trailing data", `[{"type":"stop","from":"a","stop":[{"alloc_id":"x"}]}] x`},
		{"batch without comma", `[{"type":"stop","from":"a","stop":[{"alloc_id":"x"}]} {"type":"stop","from":"a","stop":[{"alloc_id":"x"}]}]`},
		{"empty stop", `{"type":"stop","from":"a"}`},
		{"bad slot range", `{"type":"report","from":"a","report":{"slots":[[10,2]]}}`},
		{"slot out of range", `{"type":"report","from":"a","report":{"slots":[[0,16384]]}}`},
		{"task without job", `{"type":"report","from":"a","report":{"tasks":[{"alloc_id":"x"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBatch([]byte(tc.in)); err == nil {
				t.Errorf("accepted %s", tc.in)
			}
		})
	}
	big := make([]byte, MaxMessageSize+1)
	if _, err := Decode(big); err == nil {
		t.Error("accepted a message over the size limit")
	}
}
