package stream

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// sized makes an entry of one event whose line is about n bytes.
func sized(index uint64, n int) DeriveFunc {
	return func() []*Event {
		return []*Event{{Topic: TopicAllocation, Type: "AllocationPlaced", Key: fmt.Sprintf("a-%d", index),
			Payload: strings.Repeat(string(rune('a'+index%26)), n)}}
	}
}

// publishSync publishes entry index and waits until the ring has it.
func publishSync(t *testing.T, b *Broker, index uint64, d DeriveFunc) *Batch {
	t.Helper()
	b.Want(index)
	b.Publish(index, d)
	waitIndex(t, b, index)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ring.newest()
}

func pooled(b *Broker, m *lineMem) bool {
	b.lines.mu.Lock()
	defer b.lines.mu.Unlock()
	return slices.Contains(b.lines.free, m)
}

func poolContents(b *Broker) []*lineMem {
	b.lines.mu.Lock()
	defer b.lines.mu.Unlock()
	return slices.Clone(b.lines.free)
}

// A line's memory is reused only once the ring let go of its batch and
// every subscriber that took the batch asked for the next: until then
// its bytes stay as written, however many entries come after. Then later
// lines go into memory from the pool rather than into new memory.
func TestLineMemoryReused(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // of each entry's line
	}{
		{"own buffer", 64 << 10},
		{"slab", 20 << 10}, // a slab holds a dozen or more of them
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBroker(t, Config{MaxBatches: 2, MaxBytes: 64 << 20})
			// keep reads every batch as it comes: the broker goes on
			// recording after s is dropped.
			keep, err := b.Subscribe(SubscribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			defer keep.Close()
			s, err := b.Subscribe(SubscribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			index := uint64(0)
			step := func() *Batch {
				index++
				batch := publishSync(t, b, index, sized(index, tc.size))
				if _, err := keep.Next(context.Background()); err != nil {
					t.Fatal(err)
				}
				return batch
			}
			first := step()
			want := bytes.Clone(first.Line())
			got, err := s.Next(context.Background())
			if err != nil || got != first {
				t.Fatalf("took %v, %v; want the first batch", got, err)
			}
			m := first.mem
			// Entries until the first batch is out of the ring and the
			// broker fills another slab (and once more): s holds it yet.
			for {
				step()
				b.mu.Lock()
				gone := b.ring.at(first.seq) == nil && b.slabMem != m
				b.mu.Unlock()
				if gone {
					break
				}
				if index > 100 {
					t.Fatal("the first batch's memory is still used by the ring")
				}
			}
			step()
			if !bytes.Equal(got.Line(), want) || pooled(b, m) {
				t.Fatalf("a line a subscriber holds was reused (pooled: %v)", pooled(b, m))
			}
			// s was dropped as slow meanwhile; asking for the next lets go.
			if _, err := s.TryNext(); err == nil {
				t.Fatal("s still subscribed: the ring of 2 batches moved on without it")
			}
			if !pooled(b, m) {
				t.Fatal("memory not pooled after its last reader let go")
			}
			// The next memory the broker needs comes from the pool.
			for {
				before, slab := poolContents(b), b.slabMem
				next := step()
				var mem *lineMem
				switch {
				case tc.size > slabBytes/8:
					mem = next.mem
				case b.slabMem != slab:
					mem = b.slabMem
				}
				if mem != nil {
					if !slices.Contains(before, mem) {
						t.Fatal("new memory taken while the pool had some of that size")
					}
					break
				}
				if index > 200 {
					t.Fatal("the slab never filled")
				}
			}
		})
	}
}

// The pool keeps the most recently freed buffers, at most maxLineMems
// and its byte bound, and gives a buffer only to a line of half its size
// or more.
func TestLinePool(t *testing.T) {
	p := &linePool{maxBytes: 1 << 20}
	first := p.get(3000)
	if cap(first.buf) != 4096 || first.refs.Load() != 1 || len(first.buf) != 0 {
		t.Fatalf("new memory: cap %d, refs %d, len %d; want 4096, 1, 0", cap(first.buf), first.refs.Load(), len(first.buf))
	}
	first.release()
	if again := p.get(3000); again != first {
		t.Fatal("memory released and asked for again was not reused")
	}
	var ms []*lineMem
	for range maxLineMems + 4 {
		ms = append(ms, p.get(3000))
	}
	for _, m := range ms {
		m.release()
	}
	if len(p.free) != maxLineMems || slices.Contains(p.free, ms[0]) || !slices.Contains(p.free, ms[len(ms)-1]) {
		t.Fatalf("%d buffers pooled (the oldest kept: %v); want the %d most recent",
			len(p.free), slices.Contains(p.free, ms[0]), maxLineMems)
	}
	for _, tc := range []struct {
		n   int
		cap int // of the memory got: 4096 from the pool
	}{{4096, 4096}, {4097, 8192}, {2048, 4096}, {2047, 4096 /* new */}} {
		before := slices.Clone(p.free)
		m := p.get(tc.n)
		if cap(m.buf) != tc.cap || slices.Contains(before, m) != (tc.n >= 2048 && tc.n <= 4096) {
			t.Errorf("get(%d): cap %d, from the pool %v", tc.n, cap(m.buf), slices.Contains(before, m))
		}
		m.release()
	}
	small := &linePool{maxBytes: 10000}
	for range 3 {
		small.get(3000).release()
	}
	big := small.get(20000)
	big.release()
	if small.bytes > 10000 || slices.Contains(small.free, big) {
		t.Fatalf("pooled %d bytes (the large buffer: %v), more than the bound", small.bytes, slices.Contains(small.free, big))
	}
}
