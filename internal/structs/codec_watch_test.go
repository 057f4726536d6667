package structs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// testWatchFrame is a frame like the server's (placements on two nodes,
// jobs by reference) plus every odd case the wire allows.
func testWatchFrame() *NodeWatchFrame {
	job := &Job{ID: "web", Name: "web", Version: 3, Priority: 50, Count: 5, Driver: "mock",
		Resources: Resources{CPU: 100, MemoryMB: 64}, Config: map[string]any{"run_for": "1s"}}
	f := &NodeWatchFrame{Index: 42, Time: 1_700_000_000_300_000_000, Jobs: map[int]*Job{1: job, 7: nil},
		Nodes: map[string]*NodeAllocDelta{}}
	for n := range 2 {
		node := fmt.Sprintf("9b2c7e3a-0000-4000-8000-%012d", n)
		d := &NodeAllocDelta{Index: uint64(40 + n), Full: n == 1}
		for i := range 3 {
			a := testPlacement(2*i+n, node)
			a.CreateIndex, a.ModifyIndex, a.AllocModifyIndex = 40, 40, 40
			d.Allocs = append(d.Allocs, &WatchAlloc{Allocation: a, JobRef: 1})
		}
		f.Nodes[node] = d
	}
	embedded := testPlanBatch().Plans[0].Allocs[0] // carries its own job and events
	f.Nodes["node-odd"] = &NodeAllocDelta{Index: 1, Allocs: []*WatchAlloc{nil, {JobRef: -3}, {Allocation: embedded}}}
	f.Nodes["gone"] = &NodeAllocDelta{NotFound: true}
	f.Nodes["nil"] = nil
	f.Nodes["empty"] = &NodeAllocDelta{Index: 9, Full: true, Allocs: []*WatchAlloc{}}
	return f
}

func TestNodeWatchFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		frame *NodeWatchFrame
	}{
		{"server-like", testWatchFrame()},
		{"empty", &NodeWatchFrame{}},
		{"index only", &NodeWatchFrame{Index: 1 << 60, Time: -5}},
		{"empty maps", &NodeWatchFrame{Jobs: map[int]*Job{}, Nodes: map[string]*NodeAllocDelta{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := EncodeNodeWatchFrame(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeNodeWatchFrame(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.frame) {
				a, _ := json.Marshal(tt.frame)
				b, _ := json.Marshal(got)
				t.Fatalf("round trip changed the frame:\n want %s\n got  %s", a, b)
			}
			again, err := EncodeNodeWatchFrame(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, body) {
				t.Fatal("encoding is not deterministic")
			}
		})
	}
}

// TestNodeWatchFrameSize pins the point of the encoding: a frame of
// placements costs a small fraction of its JSON.
func TestNodeWatchFrameSize(t *testing.T) {
	f := &NodeWatchFrame{Index: 1000, Time: 1_700_000_000_000_000_000, Nodes: map[string]*NodeAllocDelta{}}
	for n := range 100 {
		node := fmt.Sprintf("9b2c7e3a-0000-4000-8000-%012d", n)
		d := &NodeAllocDelta{Index: 1000}
		for i := range 10 {
			a := testPlacement(n*10+i, node)
			a.CreateIndex, a.ModifyIndex, a.AllocModifyIndex = 1000, 1000, 1000
			d.Allocs = append(d.Allocs, &WatchAlloc{Allocation: a, JobRef: 1})
		}
		f.Nodes[node] = d
	}
	body, err := EncodeNodeWatchFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(f)
	t.Logf("1,000 placements: binary %d bytes (%.1f per allocation), JSON %d bytes", len(body), float64(len(body))/1000, len(js))
	if len(body)*5 > len(js) {
		t.Errorf("binary frame is %d bytes, more than a fifth of its JSON (%d)", len(body), len(js))
	}
}

func TestDecodeNodeWatchFrameErrors(t *testing.T) {
	good, err := EncodeNodeWatchFrame(testWatchFrame())
	if err != nil {
		t.Fatal(err)
	}
	// Every proper prefix fails (nothing is optional at the end).
	for n := range len(good) {
		if _, err := DecodeNodeWatchFrame(good[:n]); err == nil {
			t.Fatalf("a prefix of %d of %d bytes decoded", n, len(good))
		}
	}
	// A minimal frame: version, no strings, no plan jobs, index, time, no
	// jobs, then the nodes.
	frame := func(nodes ...byte) []byte { return append([]byte{codecVersion, 0, 0, 5, 0, 0}, nodes...) }
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"trailing", append(bytes.Clone(good), 0), "trailing bytes"},
		{"version", []byte{9}, "unknown encoding version"},
		{"node flags", frame(2, 1, 'a', 8), "unknown bits"},
		{"nil node with fields", frame(2, 2, 'a', fwNil|fwFull), "nil node with fields"},
		{"duplicate node", frame(3, 2, 'a', fwNil, 2, 'a', fwNil), "appears twice"},
		{"presence", frame(2, 2, 'a', 0, 1, 2, 2), "presence must be 0 or 1"},
		{"allocation job", frame(append(append([]byte{2, 2, 'a', 0, 1, 2, 1, 0}, binary.AppendUvarint(nil, amJob)...), append(make([]byte, 16), 1)...)...), "not in the entry's table"},
		{"too many nodes", frame(100), "cannot fit"},
		{"duplicate job", []byte{codecVersion, 0, 0, 5, 0, 3, 2, 4, 'n', 'u', 'l', 'l', 2, 4, 'n', 'u', 'l', 'l', 0}, "appears twice"},
		{"bad job", []byte{codecVersion, 0, 0, 5, 0, 2, 2, 2, '{', '!', 0}, "frame job 0 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeNodeWatchFrame(tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := DecodeNodeWatchFrame(good[:len(good)/2]); !errors.Is(err, errTruncated) && !strings.Contains(err.Error(), "cannot fit") {
		t.Fatalf("a truncated frame: %v", err)
	}
}

func (g *gen) watchFrame() *NodeWatchFrame {
	f := &NodeWatchFrame{Index: g.uint64(), Time: g.int64()}
	if g.n(2) != 0 {
		f.Jobs = map[int]*Job{}
		for range g.n(2) {
			f.Jobs[int(g.int64())] = genJobs[g.n(len(genJobs)-1)]
		}
	}
	if g.n(3) == 0 {
		return f
	}
	f.Nodes = map[string]*NodeAllocDelta{}
	var prev *Allocation
	for range g.n(3) {
		id := g.str()
		if g.n(7) == 0 {
			f.Nodes[id] = nil
			continue
		}
		d := &NodeAllocDelta{Index: g.uint64(), Full: g.n(1) == 1, NotFound: g.n(3) == 0}
		if g.n(3) != 0 {
			d.Allocs = []*WatchAlloc{}
			for range g.n(5) {
				if g.n(7) == 0 {
					d.Allocs = append(d.Allocs, nil)
					continue
				}
				a := g.alloc(prev)
				if a != nil {
					prev = a
				}
				d.Allocs = append(d.Allocs, &WatchAlloc{Allocation: a, JobRef: int(g.int64())})
			}
		}
		f.Nodes[id] = d
	}
	return f
}

// FuzzDecodeNodeWatchFrame checks, on any input, that decoding never
// panics and that what decodes re-encodes to bytes that decode and encode
// the same again; and, reading the input as a recipe for a frame, that
// decode(encode(x)) == x.
func FuzzDecodeNodeWatchFrame(f *testing.F) {
	for _, fr := range []*NodeWatchFrame{testWatchFrame(), {}, {Nodes: map[string]*NodeAllocDelta{"a": nil}}} {
		b, err := EncodeNodeWatchFrame(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{codecVersion, 0, 0, 5, 0, 0, 2, 2, 'a', 0, 1, 2, 1, 0, 0})
	f.Add(bytes.Repeat([]byte{1, 2, 0, 3}, 30))
	f.Fuzz(func(t *testing.T, data []byte) {
		if fr, err := DecodeNodeWatchFrame(data); err == nil {
			b1, err := EncodeNodeWatchFrame(fr)
			if err != nil {
				t.Fatalf("re-encoding a decoded frame: %v", err)
			}
			fr2, err := DecodeNodeWatchFrame(b1)
			if err != nil {
				t.Fatalf("decoding a re-encoded frame: %v", err)
			}
			// Jobs go through JSON, which may normalize: compare the
			// second encoding.
			b2, err := EncodeNodeWatchFrame(fr2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("encode(decode(encode(decode(x)))) differs:\n%x\n%x", b1, b2)
			}
		}
		want := (&gen{b: data}).watchFrame()
		body, err := EncodeNodeWatchFrame(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeNodeWatchFrame(body)
		if err != nil {
			t.Fatalf("decoding an encoded frame: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			a, _ := json.Marshal(want)
			b, _ := json.Marshal(got)
			t.Fatalf("round trip changed the frame:\n want %s\n got  %s", a, b)
		}
	})
}
