package stream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkFanout is the broker alone: entries of 100 events (payloads
// of about 400 bytes, encoded once by the broker) delivered to 10
// subscribers, each reading every event. b.N is events per subscriber;
// it reports events/s per subscriber and in all. The publisher is held
// back when the slowest subscriber is 1,000 entries behind (the ring
// keeps 16,384), so the figure is delivery, not drops.
func BenchmarkFanout(b *testing.B) {
	const subs, per = 10, 100
	cfg := DefaultConfig()
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	type payload struct {
		ID, JobID, NodeID, Name, Status, Desc string
		Index                                 int
		CPU, Mem                              int64
	}
	entries := (b.N + per - 1) / per
	var wg sync.WaitGroup
	var mu sync.Mutex
	read := make([]int, subs)
	for i := range subs {
		s, err := br.Subscribe(SubscribeRequest{})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			n := 0
			for n < entries*per {
				batch, err := s.Next(context.Background())
				if err != nil {
					b.Error(err)
					return
				}
				n += len(batch.Events)
				mu.Lock()
				read[i] = n / per
				mu.Unlock()
			}
		}()
	}
	slowest := func() int {
		mu.Lock()
		defer mu.Unlock()
		m := read[0]
		for _, r := range read {
			m = min(m, r)
		}
		return m
	}
	b.ResetTimer()
	start := time.Now()
	for i := range entries {
		for i-slowest() > 1000 {
			time.Sleep(50 * time.Microsecond)
		}
		index := uint64(i + 1)
		if !br.Want(index) {
			b.Fatal("no subscriber")
		}
		br.Publish(index, func() []*Event {
			out := make([]*Event, per)
			for j := range out {
				id := fmt.Sprintf("4f1d2c3b-%04x-4a5b-8c6d-%012d", j, index)
				out[j] = &Event{Topic: TopicAllocation, Type: "AllocationUpdated", Key: id, Namespace: "default",
					Payload: &payload{ID: id, JobID: "web", NodeID: "9b2c7e3a-0000-4000-8000-000000000001", Name: "web[1]",
						Status: "running", Desc: "task started", Index: j, CPU: 100, Mem: 64}}
			}
			return out
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	total := float64(entries * per)
	b.ReportMetric(total/elapsed.Seconds(), "events/s/subscriber")
	b.ReportMetric(total*subs/elapsed.Seconds(), "events/s")
}
