package structs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// gen builds values from fuzz input: each call takes the next bytes (zero
// once the input is used up), so any input is a valid recipe.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) n(max int) int { return int(g.byte()) % (max + 1) }

func (g *gen) int64() int64 {
	switch g.n(4) {
	case 0:
		return 0
	case 1:
		return int64(int8(g.byte()))
	case 2:
		return 1_700_000_000_000_000_000 + int64(g.byte())<<20
	case 3:
		return -1 << 63
	}
	var v int64
	for range 8 {
		v = v<<8 | int64(g.byte())
	}
	return v
}

func (g *gen) uint64() uint64 { return uint64(g.int64()) }

var genStrings = []string{"", "web", "run", "pending", "running", "dead", "Started", "task started",
	testUUID, "9b2c7e3a-0000-4000-8000-000000000001", "node-1", "web[3]", "ünïcode\x00", strings36()}

func strings36() string { return "4F1D2C3B-0A1B-4A5B-8C6D-0123456789AB" }

func (g *gen) str() string { return genStrings[g.n(len(genStrings)-1)] }

func (g *gen) taskState() TaskState {
	ts := TaskState{State: g.str(), Restarts: int(g.int64()), ExitCode: int(g.int64()), Failed: g.n(1) == 1,
		StartedAt: g.int64(), FinishedAt: g.int64(), PID: int(g.int64())}
	switch g.n(2) {
	case 1:
		ts.Events = []TaskEvent{}
	case 2:
		for range g.n(3) + 1 {
			ts.Events = append(ts.Events, TaskEvent{Time: g.int64(), Type: g.str(), Message: g.str()})
		}
	}
	return ts
}

func (g *gen) health() *AllocHealth {
	if g.n(2) == 0 {
		return nil
	}
	h := &AllocHealth{Healthy: g.n(1) == 1, Time: g.int64()}
	if n := g.n(3); n > 0 {
		h.Checks = []CheckStatus{}
		for range n - 1 {
			h.Checks = append(h.Checks, CheckStatus{Name: g.str(), Status: g.str(), Output: g.str(), Time: g.int64()})
		}
	}
	return h
}

// taskStates is nil, empty or a few extra tasks' states.
func (g *gen) taskStates() map[string]TaskState {
	switch g.n(3) {
	case 0, 1:
		return nil
	case 2:
		return map[string]TaskState{}
	}
	m := map[string]TaskState{}
	for range g.n(3) + 1 {
		m[g.str()] = g.taskState()
	}
	return m
}

var genJobs = []*Job{nil, {ID: "web", Name: "web", Version: 3, Priority: 50, Count: 2, Driver: "mock",
	Resources: Resources{CPU: 100, MemoryMB: 64}}, {ID: "old", Name: "old", Version: 1, Type: JobTypeBatch},
	{ID: "shop", Name: "shop", Version: 2, Count: 3, Groups: []TaskGroup{{Name: "web", Count: 2, Driver: "mock"}, {Name: "cache", Count: 1, Driver: "exec"}}}}

func (g *gen) alloc(prev *Allocation) *Allocation {
	if g.n(15) == 0 {
		return nil
	}
	a := &Allocation{}
	if prev != nil && g.n(1) == 1 {
		*a = *prev.Copy() // most fields like the one before
	}
	a.ID = g.str()
	a.Index = int(g.int64())
	a.JobID = g.str()
	a.Name = AllocName(a.JobID, a.Index)
	for range g.n(6) {
		switch g.n(17) {
		case 17:
			// A task group: the name derived from it unless case 0 or
			// 13 changes the name or the index afterwards.
			a.Group = g.str()
			a.Name = AllocGroupName(a.JobID, a.Group, a.Index)
		case 16:
			a.Health = g.health()
		case 0:
			a.Name = g.str()
		case 1:
			a.NodeID, a.NodeName = g.str(), g.str()
		case 2:
			a.JobVersion = g.uint64()
		case 3:
			a.Resources = Resources{CPU: g.int64(), MemoryMB: g.int64()}
		case 4:
			a.Priority = int(g.int64())
		case 5:
			a.Job = genJobs[g.n(len(genJobs)-1)]
		case 6:
			a.DesiredStatus, a.DesiredDescription = g.str(), g.str()
		case 7:
			a.ClientStatus, a.ClientDescription = g.str(), g.str()
		case 8:
			a.TaskState = g.taskState()
		case 9:
			a.PreviousAllocation, a.PreemptedBy = g.str(), g.str()
		case 10:
			a.RescheduleCount = int(g.int64())
		case 11:
			a.CreateTime, a.ModifyTime = g.int64(), g.int64()
		case 12:
			a.CreateIndex, a.ModifyIndex, a.AllocModifyIndex = g.uint64(), g.uint64(), g.uint64()
		case 13:
			a.Index = int(g.int64())
		case 14:
			a.Ports = nil
			if n := g.n(3); n > 0 {
				a.Ports = []AllocPort{}
				for range n - 1 {
					a.Ports = append(a.Ports, AllocPort{Label: g.str(), Value: int(g.int64()), To: int(g.int64())})
				}
			}
		case 15:
			a.TaskStates = g.taskStates()
		}
	}
	return a
}

func (g *gen) counts() map[string]int {
	if g.n(2) == 0 {
		return nil
	}
	m := map[string]int{}
	for range g.n(3) {
		m[g.str()] = int(g.int64())
	}
	return m
}

func (g *gen) planBatch() *ApplyPlanBatchRequest {
	req := &ApplyPlanBatchRequest{}
	if g.n(3) == 0 {
		return req
	}
	req.Plans = []*ApplyPlanRequest{}
	var prev *Allocation
	for range g.n(3) {
		if g.n(7) == 0 {
			req.Plans = append(req.Plans, nil)
			continue
		}
		p := &ApplyPlanRequest{JobID: g.str(), Time: g.int64(), JobVersion: g.uint64(), ClearFailure: g.n(1) == 1}
		if g.n(3) == 0 {
			p.Failure = &PlacementFailure{JobID: g.str(), Unplaced: int(g.int64()), NodesEvaluated: int(g.int64()),
				NodesFiltered: g.counts(), NodesExhausted: g.counts(), Message: g.str(), Time: g.int64()}
		}
		if g.n(3) != 0 {
			p.Allocs = []*Allocation{}
			for range g.n(6) {
				a := g.alloc(prev)
				if a != nil {
					prev = a
				}
				p.Allocs = append(p.Allocs, a)
			}
		}
		req.Plans = append(req.Plans, p)
	}
	return req
}

func (g *gen) reportBatch() *AllocClientUpdateBatchRequest {
	req := &AllocClientUpdateBatchRequest{}
	if g.n(3) == 0 {
		return req
	}
	req.Nodes = []AllocClientUpdateRequest{}
	for range g.n(3) {
		r := AllocClientUpdateRequest{NodeID: g.str(), Time: g.int64()}
		if g.n(3) != 0 {
			r.Updates = []*AllocClientUpdate{}
			for range g.n(4) {
				if g.n(7) == 0 {
					r.Updates = append(r.Updates, nil)
					continue
				}
				r.Updates = append(r.Updates, &AllocClientUpdate{ID: g.str(), ClientStatus: g.str(),
					ClientDescription: g.str(), TaskState: g.taskState(), Health: g.health()})
			}
		}
		req.Nodes = append(req.Nodes, r)
	}
	return req
}

func planSeeds(f *testing.F) {
	for _, req := range []*ApplyPlanBatchRequest{testPlanBatch(), {}, {Plans: []*ApplyPlanRequest{nil}}} {
		b, err := EncodePlanBatch(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 2, 0, 0, 0, 0, 2, 0})
	f.Add(bytes.Repeat([]byte{7, 3, 1}, 40))
}

// FuzzDecodePlanBatch checks two properties on any input: decoding it as
// a body never panics, and what decodes encodes to a body that decodes to
// the same bytes again; and, reading the input as a recipe for a request,
// decode(encode(x)) == x.
func FuzzDecodePlanBatch(f *testing.F) {
	planSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if req, err := DecodePlanBatch(data); err == nil {
			b1, err := EncodePlanBatch(req)
			if err != nil {
				t.Fatalf("re-encoding a decoded batch: %v", err)
			}
			req2, err := DecodePlanBatch(b1)
			if err != nil {
				t.Fatalf("decoding a re-encoded batch: %v", err)
			}
			// Embedded jobs go through JSON, which may normalize
			// (empty maps are omitted): compare the second encoding.
			b2, err := EncodePlanBatch(req2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("encode(decode(encode(decode(x)))) differs:\n%x\n%x", b1, b2)
			}
		}
		want := (&gen{b: data}).planBatch()
		body, err := EncodePlanBatch(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePlanBatch(body)
		if err != nil {
			t.Fatalf("decoding an encoded batch: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			a, _ := json.Marshal(want)
			b, _ := json.Marshal(got)
			t.Fatalf("round trip changed the batch:\n want %s\n got  %s", a, b)
		}
	})
}

// FuzzDecodeReportBatch is FuzzDecodePlanBatch for agents' reports.
func FuzzDecodeReportBatch(f *testing.F) {
	for _, req := range []*AllocClientUpdateBatchRequest{testReportBatch(), {}} {
		f.Add(EncodeReportBatch(req))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 1, 2, 0, 0, 2, 0})
	f.Add(bytes.Repeat([]byte{5, 2, 0, 9}, 30))
	f.Fuzz(func(t *testing.T, data []byte) {
		if req, err := DecodeReportBatch(data); err == nil {
			again, err := DecodeReportBatch(EncodeReportBatch(req))
			if err != nil {
				t.Fatalf("decoding a re-encoded batch: %v", err)
			}
			if !reflect.DeepEqual(again, req) {
				t.Fatalf("decode(encode(decode(x))) differs from decode(x)")
			}
		}
		want := (&gen{b: data}).reportBatch()
		got, err := DecodeReportBatch(EncodeReportBatch(want))
		if err != nil {
			t.Fatalf("decoding an encoded batch: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			a, _ := json.Marshal(want)
			b, _ := json.Marshal(got)
			t.Fatalf("round trip changed the batch:\n want %s\n got  %s", a, b)
		}
	})
}
