package server

import (
	"bufio"
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// derivedEntry is an applied entry as the FSM hands it to the broker.
type derivedEntry struct {
	t      structs.MessageType
	index  uint64
	req    any
	after  *state.Snapshot
	writes *state.AllocWrites
}

// derivedEntries applies eb's first n entries (plans of 1,000 placements
// and their reports, alternately), recording what each wrote.
func derivedEntries(b *testing.B, eb *eventBench, n int) []derivedEntry {
	var out []derivedEntry
	for _, data := range eb.entries[:n] {
		eb.index++
		w := &state.AllocWrites{}
		eb.f.state.RecordAllocWrites(w)
		resp, req := eb.f.apply(eb.index, structs.MessageType(data[0]), data[1:])
		eb.f.state.RecordAllocWrites(nil)
		if err, ok := resp.(error); ok && err != nil {
			b.Fatal(err)
		}
		out = append(out, derivedEntry{structs.MessageType(data[0]), eb.index, req, eb.f.state.Snapshot(), w})
	}
	return out
}

// perEvent reports the process's CPU, the wall time, the bytes and the
// allocations of the timed part per event (MemStats count every
// goroutine's, the broker's included).
type perEvent struct {
	b     *testing.B
	mem   runtime.MemStats
	cpu   int64
	start time.Time
}

func startPerEvent(b *testing.B) *perEvent {
	p := &perEvent{b: b}
	runtime.GC()
	runtime.ReadMemStats(&p.mem)
	p.cpu, p.start = processCPU(b), time.Now()
	return p
}

func (p *perEvent) report(events int64) {
	elapsed, cpu := time.Since(p.start), processCPU(p.b)-p.cpu
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	n := float64(events)
	p.b.ReportMetric(float64(elapsed.Nanoseconds())/n, "ns/event")
	p.b.ReportMetric(float64(cpu)/n, "cpu-ns/event")
	p.b.ReportMetric(float64(m.TotalAlloc-p.mem.TotalAlloc)/n, "B/event")
	p.b.ReportMetric(float64(m.Mallocs-p.mem.Mallocs)/n, "allocs/event")
}

// BenchmarkEventPipeline is the leader's cost per event before any
// subscriber writes: deriving an entry's events from its writes,
// encoding them and adding them to the ring (the broker's goroutine, one
// entry at a time: the loop waits for each batch). An op is an entry of
// 1,000 placements or their 1,000 reports, alternately; the figures per
// event count the broker's goroutine and the ring's evictions.
// "full-subscriber" adds a subscriber asking for full payloads (each
// event then encoded twice).
func BenchmarkEventPipeline(b *testing.B) {
	eb := newEventBench(b, nil, 2000)
	entries := derivedEntries(b, eb, 4)
	for _, full := range []bool{false, true} {
		name := "summary"
		if full {
			name = "full-subscriber"
		}
		b.Run(name, func(b *testing.B) {
			broker, err := stream.New(stream.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			sub, err := broker.Subscribe(stream.SubscribeRequest{})
			if err != nil {
				b.Fatal(err)
			}
			var fs *stream.Subscription
			if full {
				if fs, err = broker.Subscribe(stream.SubscribeRequest{Full: true}); err != nil {
					b.Fatal(err)
				}
				defer fs.Close()
			}
			ctx := context.Background()
			index := uint64(0)
			step := func() int {
				e := entries[index%uint64(len(entries))]
				index++
				broker.Want(index)
				broker.Publish(index, func() []*stream.Event {
					d := &deriver{index: e.index, after: e.after, written: e.writes.Allocs, fromWrites: true}
					if err := d.derive(e.t, e.req); err != nil {
						b.Error(err)
					}
					return d.out
				})
				batch, err := sub.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if fs != nil {
					if _, err := fs.Next(ctx); err != nil {
						b.Fatal(err)
					}
				}
				return len(batch.Events)
			}
			// The broker's buffers grow to an entry's size once: not
			// counted.
			for range 2 * len(entries) {
				step()
			}
			var events int64
			p := startPerEvent(b)
			for b.Loop() {
				events += int64(step())
			}
			p.report(events)
			if events < int64(b.N)*1000 {
				b.Fatalf("%d events for %d entries", events, b.N)
			}
		})
	}
}

// BenchmarkEventWrite is a subscriber's write path on the server, less
// the socket: reading the ring's batches and writing them to its buffer,
// flushed (to io.Discard) as eventStream flushes. An op reads 64 entries
// of 1,000 events; "all" takes every event (the entry's line written as
// it is), "allocations" filters the Plan events out (each event written
// from its own encoding).
func BenchmarkEventWrite(b *testing.B) {
	eb := newEventBench(b, nil, 2000)
	entries := derivedEntries(b, eb, 4)
	broker, err := stream.New(stream.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	// Keeps the broker recording; the ring then holds what the
	// benchmark's subscribers resume from.
	keep, err := broker.Subscribe(stream.SubscribeRequest{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 64
	ctx := context.Background()
	for i := range uint64(n) {
		e := entries[i%uint64(len(entries))]
		broker.Want(i + 1)
		broker.Publish(i+1, func() []*stream.Event {
			d := &deriver{index: e.index, after: e.after, written: e.writes.Allocs, fromWrites: true}
			if err := d.derive(e.t, e.req); err != nil {
				b.Error(err)
			}
			return d.out
		})
		if _, err := keep.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		filter stream.Filter
	}{{"all", stream.Filter{}}, {"allocations", stream.Filter{Topics: []stream.Topic{stream.TopicAllocation}}}} {
		b.Run(tc.name, func(b *testing.B) {
			bw := bufio.NewWriterSize(io.Discard, eventBufferBytes)
			var events int64
			p := startPerEvent(b)
			for b.Loop() {
				sub, err := broker.Subscribe(stream.SubscribeRequest{Resume: true, Index: 0, Filter: tc.filter})
				if err != nil {
					b.Fatal(err)
				}
				for {
					batch, err := sub.TryNext()
					if err != nil {
						b.Fatal(err)
					}
					if batch == nil {
						break
					}
					writeBatch(bw, batch, false)
					events += int64(len(batch.Events))
					if bw.Buffered() >= eventFlushBytes {
						if err := bw.Flush(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := bw.Flush(); err != nil {
					b.Fatal(err)
				}
				sub.Close()
			}
			p.report(events)
		})
	}
}
