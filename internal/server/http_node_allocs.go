package server

import (
	"net/http"
	"strconv"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// nodeAllocs is what agents watch (a blocking query) to learn their work:
// every allocation on the node, with its job embedded.
//
// Parameters beyond ?index= and ?wait= (see docs/bench.md for why):
//
//   - known=K: the number of allocations the caller holds from its last
//     answer. With it, the answer's index is the node's own index (the
//     last server-side change to its allocations, state.NodeAllocIndexWatch)
//     instead of the global allocation table's, so a node wakes only for
//     server-side changes to its own allocations, not for every plan
//     committed anywhere nor for its own status reports. K detects
//     removals (purge): when fewer than K allocations created at or before
//     the caller's index remain, the caller's view is stale.
//   - changes=true (requires known): answer only the allocations the
//     server changed after ?index=, unless the caller's view is stale
//     (index 0 or a removal), when the full list is sent and the
//     X-Gantry-Full header is "true". This keeps a node's traffic linear
//     in its changes instead of quadratic in its allocation count.
func (s *Server) nodeAllocs(w http.ResponseWriter, r *http.Request) (any, error) {
	ref := r.PathValue("id")
	q := r.URL.Query()
	known := -1
	if v := q.Get("known"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 0 {
			return nil, badRequest("known: must be a non-negative integer (got %q)", v)
		}
		known = k
	}
	changes := false
	switch v := q.Get("changes"); v {
	case "", "false":
	case "true":
		if known < 0 {
			return nil, badRequest("changes: requires known= (the number of allocations the caller holds)")
		}
		changes = true
	default:
		return nil, badRequest("changes: must be \"true\" or \"false\" (got %q)", v)
	}
	minIndex, _, err := queryOptions(r)
	if err != nil {
		return nil, err
	}
	full := true
	out, err := s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		n, err := snap.NodeByPrefix(ws, ref)
		if err != nil {
			return 0, nil, err
		}
		if known < 0 {
			allocs := snap.AllocsByNodeWatch(ws, n.ID)
			if allocs == nil {
				allocs = []*structs.Allocation{}
			}
			return snap.TableIndex(state.TableAllocs), allocs, nil
		}
		// Watch only the node's own index row: it moves with server-side
		// changes to this node's allocations and nothing else.
		idx := snap.NodeAllocIndexWatch(ws, n.ID)
		allocs := snap.AllocsByNode(n.ID)
		if allocs == nil {
			allocs = []*structs.Allocation{}
		}
		removed := minIndex > 0 && heldAt(allocs, minIndex) < known
		full = !changes || removed || minIndex == 0
		if full {
			return idx, allocs, nil
		}
		changed := make([]*structs.Allocation, 0, 4)
		for _, a := range allocs {
			if a.AllocModifyIndex > minIndex {
				changed = append(changed, a)
			}
		}
		return idx, changed, nil
	})
	if err == nil && changes {
		w.Header().Set(api.FullHeader, strconv.FormatBool(full))
	}
	return out, err
}

// heldAt counts the allocations a caller at minIndex holds: those created
// at or before it (an answer at index I listed every allocation of the
// node created up to I).
func heldAt(allocs []*structs.Allocation, minIndex uint64) int {
	held := 0
	for _, a := range allocs {
		if a.CreateIndex <= minIndex {
			held++
		}
	}
	return held
}
