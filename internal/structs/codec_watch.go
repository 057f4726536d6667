package structs

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// The binary encoding of the node watch's frames (issue 4), negotiated per
// request with Accept: application/vnd.gantry.frame (docs/api.md). A frame
// is what JSON would carry, in the encoding of the plan entries
// (codec_plan.go): a string table, canonical UUIDs in 16 bytes, times as
// deltas, and each allocation written as its difference from the previous
// one of the frame, so a frame of placements costs a few bytes per
// allocation besides its ID. Jobs go as JSON documents, once per job
// version per stream: they are few and their shape is rich.
//
// Body (after the version byte and string table of every binary body):
//
//	plan job table   count, then length-prefixed JSON (jobs embedded in
//	                 allocations; the server sends none)
//	index            uvarint
//	time             varint (a time of the body)
//	jobs             count (0 nil, n+1), then per job in key order:
//	                 varint key, uvarint length, JSON document
//	nodes            count (0 nil, n+1), then per node in ID order:
//	                 ID, uvarint flags (fwNil, fwFull, fwNotFound),
//	                 uvarint index, allocation count (0 nil, n+1), then
//	                 per allocation: uvarint 0 (a nil WatchAlloc) or 1,
//	                 varint job_ref, the allocation as in a plan entry

// Bits of a node's flags in a frame.
const (
	fwNil      = 1 << iota // a nil *NodeAllocDelta; nothing follows
	fwFull                 // Full
	fwNotFound             // NotFound
	fwAll      = fwNotFound<<1 - 1
)

// EncodeNodeWatchFrame returns the binary encoding of f.
// DecodeNodeWatchFrame gives back an equal frame.
func EncodeNodeWatchFrame(f *NodeWatchFrame) ([]byte, error) {
	n := 64
	for _, d := range f.Nodes {
		if d != nil {
			n += 24 + 24*len(d.Allocs)
		}
	}
	e := &planEncoder{encoder: newEncoder(n)}
	e.uvarint(f.Index)
	e.time(f.Time)
	e.count(len(f.Jobs), f.Jobs == nil)
	for _, ref := range slices.Sorted(maps.Keys(f.Jobs)) {
		doc, err := json.Marshal(f.Jobs[ref])
		if err != nil {
			return nil, fmt.Errorf("encoding frame job %d: %w", ref, err)
		}
		e.int(ref)
		e.uvarint(uint64(len(doc)))
		e.body = append(e.body, doc...)
	}
	e.count(len(f.Nodes), f.Nodes == nil)
	for _, id := range slices.Sorted(maps.Keys(f.Nodes)) {
		if err := e.nodeDelta(id, f.Nodes[id]); err != nil {
			return nil, fmt.Errorf("encoding frame node %q: %w", id, err)
		}
	}
	e.prependJobTable()
	return e.finish(), nil
}

func (e *planEncoder) nodeDelta(id string, d *NodeAllocDelta) error {
	e.id(id)
	if d == nil {
		e.uvarint(fwNil)
		return nil
	}
	var fl uint64
	if d.Full {
		fl |= fwFull
	}
	if d.NotFound {
		fl |= fwNotFound
	}
	e.uvarint(fl)
	e.uvarint(d.Index)
	e.count(len(d.Allocs), d.Allocs == nil)
	for i, wa := range d.Allocs {
		if wa == nil {
			e.uvarint(0)
			continue
		}
		e.uvarint(1)
		e.int(wa.JobRef)
		if err := e.alloc(wa.Allocation); err != nil {
			return fmt.Errorf("allocation %d: %w", i, err)
		}
	}
	return nil
}

// DecodeNodeWatchFrame decodes a frame written by EncodeNodeWatchFrame.
// The allocations share the frame's strings.
func DecodeNodeWatchFrame(body []byte) (*NodeWatchFrame, error) {
	d := &planDecoder{decoder: decoder{b: body}}
	d.header()
	if d.err == nil {
		d.jobTable()
	}
	f := &NodeWatchFrame{}
	if d.err == nil {
		f.Index = d.uvarint("frame index")
		f.Time = d.time("frame time")
		d.frameJobs(f)
	}
	if d.err == nil {
		if n := d.optCount("frame node count"); n >= 0 {
			f.Nodes = make(map[string]*NodeAllocDelta, n)
			for i := range n {
				id, delta := d.nodeDelta()
				if d.err != nil {
					d.err = fmt.Errorf("node %d of %d: %w", i, n, d.err)
					break
				}
				if _, dup := f.Nodes[id]; dup {
					d.fail("node %d of %d: node %q appears twice", i, n, id)
					break
				}
				f.Nodes[id] = delta
			}
		}
	}
	d.end()
	if d.err != nil {
		return nil, fmt.Errorf("decoding node watch frame: %w", d.err)
	}
	return f, nil
}

func (d *planDecoder) frameJobs(f *NodeWatchFrame) {
	n := d.optCount("frame job count")
	if n < 0 {
		return
	}
	f.Jobs = make(map[int]*Job, n)
	for i := range n {
		ref := d.int("frame job key")
		doc := d.bytes(d.uvarint("frame job"), "frame job")
		if d.err != nil {
			d.err = fmt.Errorf("frame job %d of %d: %w", i, n, d.err)
			return
		}
		if _, dup := f.Jobs[ref]; dup {
			d.fail("frame job %d of %d: key %d appears twice", i, n, ref)
			return
		}
		var j *Job
		if err := json.Unmarshal(doc, &j); err != nil {
			d.fail("frame job %d of %d: %w", i, n, err)
			return
		}
		f.Jobs[ref] = j
	}
}

func (d *planDecoder) nodeDelta() (string, *NodeAllocDelta) {
	id := d.id("node id")
	fl := d.uvarint("node flags")
	if d.err != nil {
		return "", nil
	}
	if fl&^fwAll != 0 {
		d.fail("node flags %#x have unknown bits", fl)
		return "", nil
	}
	if fl&fwNil != 0 {
		if fl != fwNil {
			d.fail("node flags %#x: a nil node with fields", fl)
		}
		return id, nil
	}
	delta := &NodeAllocDelta{Full: fl&fwFull != 0, NotFound: fl&fwNotFound != 0}
	delta.Index = d.uvarint("node index")
	n := d.optCount("node allocation count")
	if n < 0 {
		return id, delta
	}
	delta.Allocs = make([]*WatchAlloc, n)
	was := make([]WatchAlloc, n)
	backing := make([]Allocation, n)
	for i := range delta.Allocs {
		switch p := d.uvarint("allocation presence"); {
		case d.err != nil:
		case p == 0:
			continue
		case p != 1:
			d.fail("allocation presence must be 0 or 1 (got %d)", p)
		}
		if d.err != nil {
			d.err = fmt.Errorf("allocation %d of %d: %w", i, n, d.err)
			return "", nil
		}
		wa := &was[i]
		wa.JobRef = d.int("allocation job_ref")
		if d.alloc(&backing[i]) {
			wa.Allocation = &backing[i]
		}
		if d.err != nil {
			d.err = fmt.Errorf("allocation %d of %d: %w", i, n, d.err)
			return "", nil
		}
		delta.Allocs[i] = wa
	}
	return id, delta
}
