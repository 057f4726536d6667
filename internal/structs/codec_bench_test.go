package structs

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchBatches builds a plan entry of 1,000 placements over 1,000 nodes
// and the report entry marking them running, shaped like the server's
// (docs/bench.md, "Raft entries").
func benchBatches() (*ApplyPlanBatchRequest, *AllocClientUpdateBatchRequest) {
	const n = 1000
	t0 := int64(1_764_000_000_000_000_000)
	plan := &ApplyPlanRequest{JobID: "web", JobVersion: 3, Time: t0}
	reports := &AllocClientUpdateBatchRequest{}
	for i := range n {
		node := fmt.Sprintf("sim-%d", i*7%n)
		plan.Allocs = append(plan.Allocs, &Allocation{ID: fmt.Sprintf("4f1d2c3b-%04x-4a5b-8c6d-%012d", i, i), JobID: "web",
			JobVersion: 3, Name: AllocName("web", i), Index: i, NodeID: node, NodeName: node,
			Resources: Resources{CPU: 100, MemoryMB: 64}, Priority: 50, DesiredStatus: AllocDesiredRun,
			ClientStatus: AllocClientPending, CreateTime: t0, ModifyTime: t0})
		ti := t0 + 300_000_000 + int64(i)*50_000
		reports.Nodes = append(reports.Nodes, AllocClientUpdateRequest{NodeID: node, Time: ti + 40_000,
			Updates: []*AllocClientUpdate{{ID: plan.Allocs[i].ID, ClientStatus: AllocClientRunning, TaskState: TaskState{
				State: TaskStateRunning, StartedAt: ti + 20_000, PID: 1000 + i,
				Events: []TaskEvent{{Time: ti, Type: "Received", Message: "task received by agent"},
					{Time: ti + 20_000, Type: "Started", Message: "task started"}}}}}})
	}
	return &ApplyPlanBatchRequest{Plans: []*ApplyPlanRequest{plan}}, reports
}

// BenchmarkCodec compares encoding and decoding the entries in binary and
// JSON, per allocation.
func BenchmarkCodec(b *testing.B) {
	plans, reports := benchBatches()
	const n = 1000
	pb, err := EncodePlanBatch(plans)
	if err != nil {
		b.Fatal(err)
	}
	pj, _ := json.Marshal(plans)
	rb := EncodeReportBatch(reports)
	rj, _ := json.Marshal(reports)
	perAlloc := func(b *testing.B, size int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/alloc")
		b.ReportMetric(float64(size)/n, "entry-B/alloc")
	}
	b.Run("plan/decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodePlanBatch(pb); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(pb))
	})
	b.Run("plan/decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v ApplyPlanBatchRequest
			if err := json.Unmarshal(pj, &v); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(pj))
	})
	b.Run("plan/encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodePlanBatch(plans); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(pb))
	})
	b.Run("plan/encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plans); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(pj))
	})
	b.Run("report/decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeReportBatch(rb); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(rb))
	})
	b.Run("report/decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v AllocClientUpdateBatchRequest
			if err := json.Unmarshal(rj, &v); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(rj))
	})
	b.Run("report/encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeReportBatch(reports)
		}
		perAlloc(b, len(rb))
	})
	b.Run("report/encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(reports); err != nil {
				b.Fatal(err)
			}
		}
		perAlloc(b, len(rj))
	})
}
