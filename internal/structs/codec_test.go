package structs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const testUUID = "4f1d2c3b-0a1b-4a5b-8c6d-0123456789ab"

func testPlacement(i int, node string) *Allocation {
	return &Allocation{ID: fmt.Sprintf("4f1d2c3b-%04x-4a5b-8c6d-%012d", i, i), JobID: "web", JobVersion: 3,
		Name: AllocName("web", i), Index: i, NodeID: node, NodeName: "node-" + node[len(node)-4:],
		Resources: Resources{CPU: 100, MemoryMB: 64}, Priority: 50, DesiredStatus: AllocDesiredRun,
		ClientStatus: AllocClientPending, CreateTime: 1_700_000_000_000_000_000, ModifyTime: 1_700_000_000_000_000_000}
}

func testPlanBatch() *ApplyPlanBatchRequest {
	job := &Job{ID: "old", Name: "old", Version: 2, Priority: 10, Count: 1, Driver: "mock",
		Resources: Resources{CPU: 1, MemoryMB: 2}}
	evicted := &Allocation{ID: "not-a-uuid", JobID: "old", JobVersion: 2, Name: "custom name", Index: 7,
		NodeID: "9b2c7e3a-0000-4000-8000-000000000001", NodeName: "n1", Resources: Resources{CPU: -5, MemoryMB: 1 << 40},
		Priority: 10, Job: job, DesiredStatus: AllocDesiredEvict, DesiredDescription: "preempted by " + testUUID,
		ClientStatus: AllocClientRunning, ClientDescription: "ok",
		TaskState: TaskState{State: TaskStateRunning, Restarts: 2, ExitCode: -1, Failed: true, StartedAt: 5, FinishedAt: -7,
			PID: 99, Events: []TaskEvent{{Time: 1, Type: "Received"}, {Time: 2, Type: "Started", Message: "task started"}}},
		PreviousAllocation: testUUID, RescheduleCount: 1, PreemptedBy: testUUID, CreateTime: 3, ModifyTime: 9,
		CreateIndex: 10, ModifyIndex: 12, AllocModifyIndex: 11,
		Ports:  []AllocPort{{Label: "http", Value: 20001, To: 80}, {Label: "db", Value: -1}},
		Health: &AllocHealth{Healthy: true, Time: 8, Checks: []CheckStatus{{Name: "web-http-0", Status: CheckPassing, Output: "HTTP 200", Time: 7}}}}
	evicted2 := evicted.Copy()
	evicted2.ID = testUUID
	evicted2.TaskState.Events = []TaskEvent{}
	sameEvents := evicted.Copy()
	sameEvents.ID = "another"
	placements := []*Allocation{evicted, sameEvents, evicted2}
	for i := range 5 {
		placements = append(placements, testPlacement(i, fmt.Sprintf("9b2c7e3a-0000-4000-8000-%012d", i%2)))
	}
	placements = append(placements, nil)
	return &ApplyPlanBatchRequest{Plans: []*ApplyPlanRequest{
		{JobID: "web", JobVersion: 3, Time: 1_700_000_000_000_000_000, Allocs: placements},
		nil,
		{JobID: "batch", Time: 4, Allocs: []*Allocation{}, ClearFailure: true},
		{JobID: "other", Failure: &PlacementFailure{JobID: "other", Unplaced: 3, NodesEvaluated: 10,
			NodesFiltered: map[string]int{"zone = a": 3, "draining": 1}, NodesExhausted: map[string]int{},
			Message: "no room", Time: -1}},
	}}
}

func testReportBatch() *AllocClientUpdateBatchRequest {
	running := func(id string, pid int) *AllocClientUpdate {
		return &AllocClientUpdate{ID: id, ClientStatus: AllocClientRunning, TaskState: TaskState{State: TaskStateRunning,
			StartedAt: 1_700_000_000_000_000_000, PID: pid, Events: []TaskEvent{
				{Time: 1_700_000_000_000_000_000, Type: "Received", Message: "task received by agent"},
				{Time: 1_700_000_000_100_000_000, Type: "Started", Message: "task started"}}}}
	}
	return &AllocClientUpdateBatchRequest{Nodes: []AllocClientUpdateRequest{
		{NodeID: "9b2c7e3a-0000-4000-8000-000000000001", Time: 1_700_000_000_200_000_000,
			Updates: []*AllocClientUpdate{running(testUUID, 10), running("short", 11), nil,
				{ID: "h", ClientStatus: AllocClientRunning, Health: &AllocHealth{Time: 3, Checks: []CheckStatus{{Name: "c", Status: CheckCritical, Output: "refused", Time: 2}, {Name: "d", Status: CheckPassing}}}},
				{ID: "i", ClientStatus: AllocClientRunning, Health: &AllocHealth{Healthy: true, Time: 4}}}},
		{NodeID: "n2", Time: 1, Updates: []*AllocClientUpdate{{ID: "x", ClientStatus: AllocClientFailed,
			ClientDescription: "exited 1", TaskState: TaskState{State: TaskStateDead, Restarts: 3, ExitCode: 1,
				Failed: true, FinishedAt: 2, Events: []TaskEvent{}}}}},
		{NodeID: "n3", Updates: []*AllocClientUpdate{}},
		{NodeID: "n4"},
	}}
}

func TestPlanBatchRoundTrip(t *testing.T) {
	for name, req := range map[string]*ApplyPlanBatchRequest{
		"mixed":     testPlanBatch(),
		"nil plans": {},
		"no plans":  {Plans: []*ApplyPlanRequest{}},
		"bad uuids": {Plans: []*ApplyPlanRequest{{Allocs: []*Allocation{
			{ID: strings.ToUpper(testUUID)}, {ID: strings.Replace(testUUID, "-", "_", 1)}, {ID: testUUID[:35] + "g"}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			body, err := EncodePlanBatch(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodePlanBatch(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, req) {
				a, _ := json.Marshal(req)
				b, _ := json.Marshal(got)
				t.Fatalf("round trip changed the request:\n want %s\n got  %s", a, b)
			}
		})
	}
}

func TestPlanBatchSharesJobs(t *testing.T) {
	req := testPlanBatch()
	a := req.Plans[0].Allocs
	body, err := EncodePlanBatch(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePlanBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Job != a[1].Job || got.Plans[0].Allocs[0].Job != got.Plans[0].Allocs[1].Job {
		t.Fatal("one job embedded twice should decode to one *Job")
	}
	if &got.Plans[0].Allocs[0].TaskState.Events[0] == &got.Plans[0].Allocs[1].TaskState.Events[0] {
		t.Fatal("two allocations share an events slice")
	}
}

func TestReportBatchRoundTrip(t *testing.T) {
	for name, req := range map[string]*AllocClientUpdateBatchRequest{
		"mixed":     testReportBatch(),
		"nil nodes": {},
		"no nodes":  {Nodes: []AllocClientUpdateRequest{}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeReportBatch(EncodeReportBatch(req))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, req) {
				a, _ := json.Marshal(req)
				b, _ := json.Marshal(got)
				t.Fatalf("round trip changed the request:\n want %s\n got  %s", a, b)
			}
		})
	}
}

// TestCodecSizes checks the encodings are the compact kind they are for:
// a run of placements like the plan applier's, and running reports.
func TestCodecSizes(t *testing.T) {
	const n = 1000
	plan := &ApplyPlanRequest{JobID: "web", JobVersion: 3, Time: 1_700_000_000_000_000_000}
	reports := &AllocClientUpdateBatchRequest{}
	for i := range n {
		a := testPlacement(i, fmt.Sprintf("9b2c7e3a-0000-4000-8000-%012d", i*7%n))
		plan.Allocs = append(plan.Allocs, a)
		reports.Nodes = append(reports.Nodes, AllocClientUpdateRequest{NodeID: a.NodeID, Time: 1_700_000_001_000_000_000 + int64(i)*1000,
			Updates: []*AllocClientUpdate{{ID: a.ID, ClientStatus: AllocClientRunning, TaskState: TaskState{
				State: TaskStateRunning, StartedAt: 1_700_000_000_500_000_000 + int64(i)*1000, PID: 1000 + i,
				Events: []TaskEvent{{Time: 1_700_000_000_400_000_000 + int64(i)*1000, Type: "Received", Message: "task received by agent"},
					{Time: 1_700_000_000_500_000_000 + int64(i)*1000, Type: "Started", Message: "task started"}}}}}})
	}
	batch := &ApplyPlanBatchRequest{Plans: []*ApplyPlanRequest{plan}}
	pb, err := EncodePlanBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(batch)
	rb := EncodeReportBatch(reports)
	rj, _ := json.Marshal(reports)
	t.Logf("plan: %d B/alloc binary, %d B/alloc JSON; reports: %d B/alloc binary, %d B/alloc JSON",
		len(pb)/n, len(pj)/n, len(rb)/n, len(rj)/n)
	// Each node appears once: its 16-byte ID and name are in the table.
	if len(pb)/n > 64 || len(rb)/n > 72 {
		t.Fatalf("plan %d B/alloc, reports %d B/alloc: want at most 64 and 72", len(pb)/n, len(rb)/n)
	}
}

func TestDecodeErrors(t *testing.T) {
	plan, err := EncodePlanBatch(testPlanBatch())
	if err != nil {
		t.Fatal(err)
	}
	report := EncodeReportBatch(testReportBatch())
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	one := []byte{1}
	for _, tc := range []struct {
		name   string
		body   []byte
		report bool
		want   string
	}{
		{"empty", nil, false, "empty body"},
		{"version", []byte{2}, false, "unknown encoding version 2"},
		{"truncated plan", plan[:len(plan)-1], false, "entry ends early"},
		{"trailing plan", append(append([]byte{}, plan...), 0), false, "1 trailing bytes"},
		{"truncated report", report[:len(report)-3], true, "entry ends early"},
		{"trailing report", append(append([]byte{}, report...), 0), true, "1 trailing bytes"},
		{"huge table", cat(one, uv(1<<40)), false, "string table: 1099511627776 items cannot fit"},
		{"huge string", cat(one, uv(1), uv(1<<30)), false, "longer than"},
		{"varint overflow", cat(one, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), false, "overflows"},
		{"bad job json", cat(one, uv(0), uv(1), uv(2), []byte("{x")), false, "job table entry 0 of 1"},
		{"null job", cat(one, uv(0), uv(1), uv(4), []byte("null")), false, "job table entry 0 of 1: null"},
		{"plan flags", cat(one, uv(0), uv(0), uv(2), uv(1<<5)), false, "plan 0 of 1: plan flags 0x20 have unknown bits"},
		{"nil plan flags", cat(one, uv(0), uv(0), uv(2), uv(pfNil|pfFailure)), false, "a nil plan with other flags"},
		{"bad ref", cat(one, uv(1), uv(2), []byte("w"), uv(0), uv(2), uv(0), uv(1)), false, "plan job_id: string 1 is not in the entry's table of 1"},
		{"alloc mask", cat(one, uv(1), uv(1), uv(0), uv(2), uv(0), uv(0), uv(0), uv(0), uv(2), uv(1<<30)), false,
			"plan 0 of 1: allocation 0 of 1: allocation mask 0x40000000 has unknown bits"},
		{"alloc job ref", cat(one, uv(1), uv(1), uv(0), uv(2), uv(0), uv(0), uv(0), uv(0), uv(2), uv(amJob), make([]byte, 16), uv(1)), false,
			"job 1 is not in the entry's table of 0"},
		{"dup map key", cat(one, uv(1), uv(1), uv(0), uv(2), uv(pfFailure), uv(0), uv(0), uv(0), uv(0), uv(0), uv(0), uv(3), uv(0), uv(1), uv(0), uv(2)), false,
			`key "" twice`},
		{"report mask", cat(one, uv(1), uv(1), uv(2), uv(0), uv(0), uv(2), uv(1<<5)), true, "node 0 of 1: report 0 of 1: report mask 0x20 has unknown bits"},
		{"health flags", cat(one, uv(1), uv(1), uv(2), uv(0), uv(0), uv(2), uv(umHealth), make([]byte, 16), uv(0), uv(4)), true, "health flags 0x4 have unknown bits"},
		{"task mask", cat(one, uv(1), uv(1), uv(2), uv(0), uv(0), uv(2), uv(0), make([]byte, 16), uv(1<<8)), true, "task state mask 0x100 has unknown bits"},
		{"events count", cat(one, uv(1), uv(1), uv(2), uv(0), uv(0), uv(2), uv(0), make([]byte, 16), uv(tsEvents), uv(100)), true, "task events: 100 items cannot fit"},
		{"zero pid", cat(one, uv(1), uv(1), uv(2), uv(0), uv(0), uv(2), uv(0), make([]byte, 16), uv(tsPID), uv(0)), true, "task pid: written as set but zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.report {
				_, err = DecodeReportBatch(tc.body)
			} else {
				_, err = DecodePlanBatch(tc.body)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(tc.want, "ends early") && !errors.Is(err, errTruncated) {
				t.Fatalf("error %v does not wrap errTruncated", err)
			}
		})
	}
}

func TestIsAllocName(t *testing.T) {
	for _, tc := range []struct {
		name, job string
		idx       int
		want      bool
	}{
		{"web[3]", "web", 3, true},
		{"web[-3]", "web", -3, true},
		{"[0]", "", 0, true},
		{"web[3]", "web", 4, false},
		{"web[03]", "web", 3, false},
		{"web(3)", "web", 3, false},
		{"we[3]", "web", 3, false},
		{"web[3", "web", 3, false},
		{"", "", 0, false},
	} {
		if got := isAllocName(tc.name, tc.job, tc.idx); got != tc.want {
			t.Errorf("isAllocName(%q, %q, %d) = %v, want %v", tc.name, tc.job, tc.idx, got, tc.want)
		}
		if got := tc.name == AllocName(tc.job, tc.idx); got != tc.want {
			t.Errorf("AllocName(%q, %d) == %q is %v, want %v", tc.job, tc.idx, tc.name, got, tc.want)
		}
	}
}
