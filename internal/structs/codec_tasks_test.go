package structs

import (
	"reflect"
	"testing"
)

// TestReportBatchTaskStates: extra tasks' states survive the report codec,
// and a report without them is written as before task groups existed (no
// umTaskStates bit), so old and new bodies read the same.
func TestReportBatchTaskStates(t *testing.T) {
	req := testReportBatch()
	plain := EncodeReportBatch(req)
	u := req.Nodes[0].Updates[0]
	u.TaskStates = map[string]TaskState{
		"migrate": {State: TaskStateDead, FinishedAt: 5, Events: []TaskEvent{{Time: 4, Type: "Terminated", Message: "exit code 0"}}},
		"proxy":   {State: TaskStateRunning, StartedAt: 3, PID: 12, Restarts: 1},
	}
	got, err := DecodeReportBatch(EncodeReportBatch(req))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("round trip changed the batch:\n got %+v\nwant %+v", got.Nodes[0].Updates[0], u)
	}
	u.TaskStates = nil
	if again := EncodeReportBatch(req); string(again) != string(plain) {
		t.Fatal("a report without extra tasks is not encoded as before")
	}
	old, err := DecodeReportBatch(plain)
	if err != nil {
		t.Fatal(err)
	}
	if old.Nodes[0].Updates[0].TaskStates != nil {
		t.Fatal("a body without task states decoded with some")
	}
}

// TestPlanBatchTaskStates: allocations carry extra tasks' states through
// the plan codec, including going back to none after an allocation that
// had some.
func TestPlanBatchTaskStates(t *testing.T) {
	a := &Allocation{ID: testUUID, JobID: "web", Name: "web[0]", TaskStates: map[string]TaskState{"side": {State: TaskStateRunning}}}
	b := &Allocation{ID: "9b2c7e3a-0000-4000-8000-000000000001", JobID: "web", Name: "web[1]", Index: 1}
	req := &ApplyPlanBatchRequest{Plans: []*ApplyPlanRequest{{JobID: "web", Allocs: []*Allocation{a, b, a}}}}
	body, err := EncodePlanBatch(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePlanBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("round trip changed the allocations: %+v", got.Plans[0].Allocs)
	}
}
