package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// eventBench is an FSM with 1,000 nodes and a job, and the entries of
// placements and reports to apply to it: plan entries of 1,000
// placements, each followed by a report entry marking them running, as
// the plan pipeline and the report batcher write them.
type eventBench struct {
	f       *fsm
	index   uint64
	entries [][]byte
	allocs  int // allocations the entries place
}

func newEventBench(b *testing.B, broker *stream.Broker, allocs int) *eventBench {
	return newEventBenchOf(b, broker, allocs, 1000)
}

// newEventBenchOf is newEventBench with entries of batch placements (and
// their reports).
func newEventBenchOf(b *testing.B, broker *stream.Broker, allocs, batch int) *eventBench {
	const nodes = 1000
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	eb := &eventBench{f: &fsm{state: st, logger: slog.New(slog.DiscardHandler), events: broker}}
	apply := func(mt structs.MessageType, req any) {
		data, err := encodeEntry(mt, req)
		if err != nil {
			b.Fatal(err)
		}
		eb.apply(b, data)
	}
	nodeID := func(i int) string { return fmt.Sprintf("9b2c7e3a-0000-4000-8000-%012d", i) }
	for i := range nodes {
		apply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: &structs.Node{ID: nodeID(i),
			Name: fmt.Sprintf("node-%04d", i), Capacity: structs.Resources{CPU: 1 << 40, MemoryMB: 1 << 40}}})
	}
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Priority: 50, Count: 1, Version: 1,
		Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	apply(structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job})
	for n := 0; n < allocs; n += batch {
		t0 := int64(1_764_000_000_000_000_000) + int64(n)*1_000_000
		req := &structs.ApplyPlanRequest{JobID: "web", JobVersion: 1, Time: t0}
		upd := &structs.AllocClientUpdateBatchRequest{}
		for i := range batch {
			id := fmt.Sprintf("4f1d2c3b-%04x-4a5b-8c6d-%012d", i, n)
			node := nodeID((n/batch + i) % nodes)
			req.Allocs = append(req.Allocs, &structs.Allocation{ID: id, JobID: "web", JobVersion: 1,
				Name: structs.AllocName("web", n+i), Index: n + i, NodeID: node, Resources: job.Resources,
				Priority: 50, DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending,
				CreateTime: t0, ModifyTime: t0})
			upd.Nodes = append(upd.Nodes, structs.AllocClientUpdateRequest{NodeID: node, Time: t0 + 1000,
				Updates: []*structs.AllocClientUpdate{{ID: id, ClientStatus: structs.AllocClientRunning,
					TaskState: structs.TaskState{State: structs.TaskStateRunning, StartedAt: t0 + 500, PID: 1000 + i}}}})
		}
		p, err := encodeEntry(structs.ApplyPlanBatchRequestType, &structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{req}})
		if err != nil {
			b.Fatal(err)
		}
		r, err := encodeEntry(structs.AllocClientUpdateBatchRequestType, upd)
		if err != nil {
			b.Fatal(err)
		}
		eb.entries = append(eb.entries, p, r)
		eb.allocs += batch
	}
	return eb
}

func (eb *eventBench) apply(b *testing.B, data []byte) {
	eb.index++
	if resp := eb.f.Apply(&raft.Log{Index: eb.index, Type: raft.LogCommand, Data: data}); resp != nil {
		if err, ok := resp.(error); ok {
			b.Fatal(err)
		}
	}
}

// BenchmarkFSMEvents is the event stream's cost on the commit path: the
// FSM's time per allocation (a placement and its running report) with no
// broker (the code before the stream), a broker nobody subscribes to, a
// broker with 10 subscribers reading everything (deriving and encoding
// then run on the broker's goroutine, beside the FSM: cpu-ns counts the
// whole process), and one subscriber that never reads (with a ring of 8
// entries, so it is dropped early on: the FSM never waits for it).
func BenchmarkFSMEvents(b *testing.B) {
	for _, tc := range []struct {
		name    string
		broker  bool
		subs    int
		stalled bool
	}{{"no-broker", false, 0, false}, {"idle", true, 0, false}, {"subscribers-10", true, 10, false}, {"stalled-1", true, 0, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var broker *stream.Broker
			if tc.broker {
				cfg := stream.DefaultConfig()
				if tc.stalled {
					cfg.MaxBatches = 8
				}
				var err error
				if broker, err = stream.New(cfg); err != nil {
					b.Fatal(err)
				}
				defer broker.Close()
			}
			var stalled *stream.Subscription
			if tc.stalled {
				var err error
				if stalled, err = broker.Subscribe(stream.SubscribeRequest{}); err != nil {
					b.Fatal(err)
				}
			}
			eb := newEventBench(b, broker, max(b.N, 1000))
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			var delivered atomic.Int64
			for range tc.subs {
				sub, err := broker.Subscribe(stream.SubscribeRequest{})
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sub.Close()
					for {
						batch, err := sub.Next(ctx)
						if err != nil {
							return
						}
						delivered.Add(int64(len(batch.Events)))
					}
				}()
			}
			b.ResetTimer()
			start, startCPU := time.Now(), processCPU(b)
			for _, e := range eb.entries {
				eb.apply(b, e)
			}
			applyNs := time.Since(start)
			b.StopTimer()
			// Let the subscribers catch up before reading the CPU.
			if tc.subs > 0 {
				want := int64(tc.subs) * int64(2*eb.allocs+len(eb.entries)/2)
				for delivered.Load() < want && broker.Stats().Subscribers == tc.subs {
					time.Sleep(time.Millisecond)
				}
				if st := broker.Stats(); st.Subscribers != tc.subs {
					b.Fatalf("a subscriber was dropped: %+v", st)
				}
			}
			if stalled != nil {
				<-stalled.Done()
				if e := stalled.Err(); e.Code != stream.CodeSlow {
					b.Fatalf("the stalled subscriber ended with %v", e)
				}
			}
			cpu := processCPU(b) - startCPU
			cancel()
			wg.Wait()
			b.ReportMetric(float64(applyNs.Nanoseconds())/float64(eb.allocs), "apply-ns/alloc")
			b.ReportMetric(float64(cpu)/float64(eb.allocs), "cpu-ns/alloc")
		})
	}
}

// BenchmarkEventStreamHTTP is the stream's throughput: 10 clients read
// GET /v1/event/stream over HTTP while the FSM applies placements and
// reports (two events per allocation). It reports the events each
// subscriber receives per second and in all; b.N is events per
// subscriber. The FSM is held back when the slowest client is 64 entries
// behind, so what is measured is delivery, not the ring dropping anyone.
func BenchmarkEventStreamHTTP(b *testing.B) { benchmarkEventStreamHTTP(b, 1000) }

// BenchmarkEventStreamHTTPSmallEntries is BenchmarkEventStreamHTTP with
// entries of 10 placements or 10 reports: the cost per entry of waking
// the subscribers and writing to them, rather than per byte, dominates.
func BenchmarkEventStreamHTTPSmallEntries(b *testing.B) { benchmarkEventStreamHTTP(b, 10) }

func benchmarkEventStreamHTTP(b *testing.B, batch int) {
	const subs = 10
	broker, err := stream.New(stream.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	srv := &Server{events: broker, cfg: Config{Events: DefaultEventsConfig()}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := srv.eventStream(w, r); err != nil {
			writeError(w, err)
		}
	}))
	defer hs.Close()
	eb := newEventBenchOf(b, broker, max(b.N/2, 1000), batch)
	total := int64(2*eb.allocs + len(eb.entries)/2) // + one plan event per plan entry

	var counts [subs]atomic.Int64
	var lines [subs]atomic.Int64
	var wire [subs]atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{}, subs)
	for i := range subs {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/v1/event/stream", nil)
		resp, err := hs.Client().Do(req) //nolint:bodyclose // the reader goroutine closes it
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			ready <- struct{}{}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 64<<20)
			marker := []byte(`{"key":`)
			for sc.Scan() {
				counts[i].Add(int64(bytes.Count(sc.Bytes(), marker)))
				lines[i].Add(1)
				wire[i].Add(int64(len(sc.Bytes()) + 1))
				if counts[i].Load() >= total {
					return
				}
			}
		}()
	}
	for range subs {
		<-ready
	}
	slowest := func() int64 {
		m := lines[0].Load()
		for i := range subs {
			m = min(m, lines[i].Load())
		}
		return m
	}
	b.ResetTimer()
	start, startCPU := time.Now(), processCPU(b)
	for i, e := range eb.entries {
		for int64(i)-slowest() > 64 {
			time.Sleep(100 * time.Microsecond)
		}
		eb.apply(b, e)
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU(b)-startCPU
	b.StopTimer()
	for i := range subs {
		if got := counts[i].Load(); got != total {
			b.Fatalf("subscriber %d got %d events of %d", i, got, total)
		}
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s/subscriber")
	b.ReportMetric(float64(total*subs)/elapsed.Seconds(), "events/s")
	// CPU (server, FSM and the clients' counting) per event delivered:
	// the figure a shared machine's load disturbs least.
	b.ReportMetric(float64(cpu)/float64(total*subs), "cpu-ns/event")
	var bytes int64
	for i := range subs {
		bytes += wire[i].Load()
	}
	b.ReportMetric(float64(bytes)/float64(total*subs), "B/event")
}

// BenchmarkDeriveEvents is deriving alone (the broker goroutine's part
// before encoding), for a plan entry of 1,000 placements and the report
// entry after it: from the allocations each entry stored (what the FSM
// hands over while someone subscribes) and by looking each allocation up
// in the state after the entry (what an entry that wrote one twice
// falls back to). An op is an entry; cpu-ns/entry is the process's CPU
// (GC included), which a loaded machine disturbs less than ns/op.
func BenchmarkDeriveEvents(b *testing.B) {
	eb := newEventBench(b, nil, 1000)
	type derived struct {
		t      structs.MessageType
		req    any
		after  *state.Snapshot
		writes *state.AllocWrites
	}
	var entries []derived
	for _, data := range eb.entries[:2] {
		eb.index++
		w := &state.AllocWrites{}
		eb.f.state.RecordAllocWrites(w)
		resp, req := eb.f.apply(eb.index, structs.MessageType(data[0]), data[1:])
		eb.f.state.RecordAllocWrites(nil)
		if err, ok := resp.(error); ok && err != nil {
			b.Fatal(err)
		}
		entries = append(entries, derived{structs.MessageType(data[0]), req, eb.f.state.Snapshot(), w})
	}
	for _, fromWrites := range []bool{true, false} {
		name := "from-state"
		if fromWrites {
			name = "from-writes"
		}
		for i, e := range entries {
			b.Run(fmt.Sprintf("%s/%s", name, []string{"plan", "report"}[i]), func(b *testing.B) {
				events := 0
				cpu0 := processCPU(b)
				for b.Loop() {
					d := &deriver{index: eb.index - uint64(len(entries)-1-i), after: e.after}
					if fromWrites {
						d.written, d.fromWrites = e.writes.Allocs, true
					}
					if err := d.derive(e.t, e.req); err != nil {
						b.Fatal(err)
					}
					events = len(d.out)
				}
				b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/entry")
				if events < 1000 {
					b.Fatalf("%d events", events)
				}
			})
		}
	}
}
