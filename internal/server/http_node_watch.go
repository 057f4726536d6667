package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// The multiplexed node watch: POST /v1/nodes/allocations/watch.
//
// One request watches many nodes' allocations (a simulated cluster runs
// one per few hundred nodes; a real agent one for its node). The answer is
// a frame: for each node that changed, the allocations the server changed
// since the caller's index (or the full list when the caller's view is
// stale), without embedded jobs; each job version is sent once per answer
// or stream and referred to by number. With ?stream=true the response is
// a stream of frames (newline-delimited JSON, or length-prefixed binary
// frames when the request accepts api.FrameContentType), one per batch of changes,
// the first at once; else the request answers one frame when any of its
// nodes changed, or an empty one when ?wait= passed.
//
// Finding which of the watched nodes changed never scans them all per
// commit. The state keeps, per node, the index of the last server-side
// change to its allocations, ordered by that index: a change feed
// (internal/state/nodewatch.go). A watch of more than smallWatch nodes
// sleeps on the feed, and on waking reads only the rows above its cursor
// (the nodes changed since it last looked) and keeps those it watches. A
// watch of few nodes (an agent) sleeps on its nodes' own rows and wakes
// only for them, so 10,000 agents do not all wake on every commit.
// Agents' status reports do not enter the feed.

// smallWatch is the largest watch that sleeps on its nodes' own rows
// (one watch channel each) rather than on the whole feed.
const smallWatch = 16

// nodeWatchState is what the server knows the caller holds of a node.
type nodeWatchState struct {
	index uint64 // the node's index the caller last received (0: nothing)
	known int    // allocations the caller holds
}

// nodeWatcher serves one watch request.
type nodeWatcher struct {
	nodes  map[string]*nodeWatchState
	ids    []string // sorted, for small watches
	cursor uint64   // the feed was read up to here (large watches)
	primed bool     // every node was examined once
	jobs   map[jobRef]int
	drop   []string // nodes to stop watching (not found)
}

// jobRef identifies one stored version of a job (as the state's job
// interner does: stored jobs are never modified in place).
type jobRef struct {
	id            string
	version, mods uint64
}

// validateNodeWatch checks a watch request.
func validateNodeWatch(req *api.NodeWatchRequest) error {
	if len(req.Nodes) == 0 {
		return badRequest("nodes: at least one node is required")
	}
	if len(req.Nodes) > api.MaxWatchNodes {
		return badRequest("nodes: at most %d nodes per watch (got %d)", api.MaxWatchNodes, len(req.Nodes))
	}
	var fields []structs.FieldError
	for id, st := range req.Nodes {
		switch {
		case id == "" || len(id) > 128:
			fields = append(fields, structs.FieldError{Field: fmt.Sprintf("nodes[%q]", id), Rule: "node ID must be 1 to 128 characters"})
		case st.Known < 0:
			fields = append(fields, structs.FieldError{Field: fmt.Sprintf("nodes[%q].known", id), Rule: fmt.Sprintf("must be >= 0 (got %d)", st.Known)})
		}
	}
	if len(fields) > 0 {
		sort.Slice(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
		return &httpError{code: http.StatusBadRequest, msg: "invalid node watch", fields: fields}
	}
	return nil
}

func parseBool(name, v string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badRequest("%s: must be \"true\" or \"false\" (got %q)", name, v)
}

func (s *Server) nodeAllocsWatch(w http.ResponseWriter, r *http.Request) (any, error) {
	stream, err := parseBool("stream", r.URL.Query().Get("stream"))
	if err != nil {
		return nil, err
	}
	_, wait, err := queryOptions(r)
	if err != nil {
		return nil, err
	}
	var req api.NodeWatchRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if err := validateNodeWatch(&req); err != nil {
		return nil, err
	}
	if wait <= 0 || wait > state.MaxQueryWait {
		wait = state.MaxQueryWait
	}
	wait += rand.N(wait/16 + 1)
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()

	nw := newNodeWatcher(&req)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	binaryFrames := api.AcceptsFrames(r.Header.Values("Accept"))
	var lenBuf [binary.MaxVarintLen64]byte
	started := false
	send := func(f *api.NodeWatchFrame) error {
		if !started {
			started = true
			switch {
			case binaryFrames:
				w.Header().Set("Content-Type", api.FrameContentType)
			case stream:
				w.Header().Set("Content-Type", "application/x-ndjson")
			default:
				w.Header().Set("Content-Type", "application/json")
			}
			w.Header().Set(api.IndexHeader, strconv.FormatUint(max(f.Index, 1), 10))
			w.WriteHeader(http.StatusOK)
		}
		f.Time = time.Now().UnixNano()
		if binaryFrames {
			// Each frame is its length (uvarint), then the frame.
			b, err := structs.EncodeNodeWatchFrame(f)
			if err != nil {
				return err
			}
			if _, err := w.Write(binary.AppendUvarint(lenBuf[:0], uint64(len(b)))); err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		} else if err := enc.Encode(f); err != nil {
			return err
		}
		if stream {
			return rc.Flush()
		}
		return nil
	}
	for {
		snap := s.state.Snapshot()
		ws := memdb.NewWatchSet()
		f := nw.collect(snap, ws)
		if len(f.Nodes) > 0 || (stream && !started) {
			if err := send(f); err != nil || !stream {
				return nil, nil // the client went away, or the answer is complete
			}
		}
		if len(nw.nodes) == 0 {
			// Every node was unknown (and reported): nothing to watch.
			if !started {
				_ = send(f)
			}
			return nil, nil
		}
		werr := ws.WatchCtx(ctx)
		select {
		case <-snap.Abandoned():
			// A restore replaced the state: the feed starts over. Let
			// the caller reconnect with what it holds.
			if !stream {
				// Nothing was sent yet: start over from the request.
				nw = newNodeWatcher(&req)
				continue
			}
			return nil, nil
		default:
		}
		if werr != nil {
			if r.Context().Err() != nil {
				return nil, nil
			}
			if !stream {
				// wait passed without change: an empty answer.
				_ = send(&api.NodeWatchFrame{Index: snap.Index()})
			}
			return nil, nil
		}
		if !s.Leader() {
			// Deposed: the caller reconnects and is forwarded to the new
			// leader.
			return nil, nil
		}
	}
}

func newNodeWatcher(req *api.NodeWatchRequest) *nodeWatcher {
	nw := &nodeWatcher{nodes: make(map[string]*nodeWatchState, len(req.Nodes)), jobs: map[jobRef]int{}}
	cursor := ^uint64(0)
	for id, st := range req.Nodes {
		nw.nodes[id] = &nodeWatchState{index: st.Index, known: st.Known}
		nw.ids = append(nw.ids, id)
		cursor = min(cursor, st.Index)
	}
	sort.Strings(nw.ids)
	nw.cursor = cursor
	return nw
}

// collect reads the changes of the watched nodes in snap, records them as
// sent, and adds to ws what to sleep on until the next change.
func (nw *nodeWatcher) collect(snap *state.Snapshot, ws memdb.WatchSet) *api.NodeWatchFrame {
	f := nw.read(snap, ws)
	for _, id := range nw.drop {
		delete(nw.nodes, id)
		if i, ok := slices.BinarySearch(nw.ids, id); ok {
			nw.ids = slices.Delete(nw.ids, i, i+1)
		}
	}
	nw.drop = nw.drop[:0]
	return f
}

func (nw *nodeWatcher) read(snap *state.Snapshot, ws memdb.WatchSet) *api.NodeWatchFrame {
	f := &api.NodeWatchFrame{Index: snap.Index()}
	if len(nw.nodes) <= smallWatch {
		for _, id := range nw.ids {
			snap.NodeAllocIndexWatch(ws, id)
			nw.examine(snap, f, id, nw.nodes[id])
		}
		return f
	}
	// Sleep on the whole feed; read only what changed since the cursor.
	snap.NodeAllocFeedWatch(ws)
	if !nw.primed {
		// The first look examines every node (each may be stale or new).
		nw.primed = true
		top := nw.cursor
		snap.NodeAllocChangesSince(nw.cursor, func(_ string, idx uint64) bool {
			top = max(top, idx)
			return true
		})
		for _, id := range nw.ids {
			nw.examine(snap, f, id, nw.nodes[id])
		}
		nw.cursor = top
		return f
	}
	snap.NodeAllocChangesSince(nw.cursor, func(id string, idx uint64) bool {
		nw.cursor = max(nw.cursor, idx)
		if st := nw.nodes[id]; st != nil {
			nw.examine(snap, f, id, st)
		}
		return true
	})
	return f
}

// examine adds the node's changes since st to f and advances st.
func (nw *nodeWatcher) examine(snap *state.Snapshot, f *api.NodeWatchFrame, id string, st *nodeWatchState) {
	rowIdx, has := snap.NodeAllocIndex(id)
	// A node that never held an allocation has no row: its index is 1, so
	// that the caller's next index is not 0 (which asks for everything).
	rowIdx = max(rowIdx, 1)
	full := false
	switch {
	case st.index == 0:
		full = true
	case !has && st.index > 1, rowIdx < st.index:
		// The caller's index is from another history (a restored or
		// replaced server state): start it over.
		full = true
	case rowIdx == st.index:
		return
	}
	if full {
		if snap.NodeByID(id) == nil {
			// Reported once, then no longer watched: the caller
			// registers the node again and watches it anew.
			f.Nodes = addDelta(f.Nodes, id, &api.NodeAllocDelta{NotFound: true})
			nw.drop = append(nw.drop, id)
			return
		}
	}
	// The allocations changed after the caller's index, and how many of
	// the node's allocations the caller holds (created at or before its
	// index), from the node's index entries without loading the unchanged
	// allocations. Fewer than it says it holds: some were removed (purged),
	// so it gets the full list instead.
	d := &api.NodeAllocDelta{Index: rowIdx, Full: full}
	total := 0
	if !full {
		var held int
		held, total = snap.NodeAllocDelta(id, st.index, func(a *structs.Allocation) {
			d.Allocs = append(d.Allocs, nw.wire(f, a))
		})
		if held < st.known {
			d.Full = true
			d.Allocs = d.Allocs[:0]
		}
	}
	if d.Full {
		total = 0
		snap.EachAllocOfNode(id, func(a *structs.Allocation) bool {
			total++
			d.Allocs = append(d.Allocs, nw.wire(f, a))
			return true
		})
	}
	st.index, st.known = rowIdx, total
	if d.Full || len(d.Allocs) > 0 {
		f.Nodes = addDelta(f.Nodes, id, d)
	}
}

func addDelta(m map[string]*api.NodeAllocDelta, id string, d *api.NodeAllocDelta) map[string]*api.NodeAllocDelta {
	if m == nil {
		m = map[string]*api.NodeAllocDelta{}
	}
	m[id] = d
	return m
}

// wire returns the allocation as sent: without its job, which goes into
// the frame's jobs once per version per watch.
func (nw *nodeWatcher) wire(f *api.NodeWatchFrame, a *structs.Allocation) *api.WatchAlloc {
	c := *a
	c.Job = nil
	wa := &api.WatchAlloc{Allocation: &c}
	if j := a.Job; j != nil {
		k := jobRef{j.ID, j.Version, j.ModifyIndex}
		ref, ok := nw.jobs[k]
		if !ok {
			ref = len(nw.jobs) + 1
			nw.jobs[k] = ref
			if f.Jobs == nil {
				f.Jobs = map[int]*structs.Job{}
			}
			f.Jobs[ref] = j
		}
		wa.JobRef = ref
	}
	return wa
}
