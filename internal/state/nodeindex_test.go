package state

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// fired reports whether ws has fired. A watch that fired returns at once;
// the short wait only bounds the negative case (an already-cancelled
// context would race with a fired channel inside WatchCtx's select).
func fired(ws memdb.WatchSet) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	return ws.WatchCtx(ctx) == nil
}

// TestNodeAllocIndexWatch checks that a node's index row moves, and its
// watch fires, for server-side changes to that node's allocations only:
// not for other nodes (however their IDs sort) nor for client reports.
func TestNodeAllocIndexWatch(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(1, &structs.Job{ID: "j", Name: "j", Count: 100}))
	// Many nodes with shared ID prefixes, as simulated nodes have.
	var first []*structs.Allocation
	for i := range 50 {
		first = append(first, testAlloc(fmt.Sprint("a", i), "j", fmt.Sprintf("sim-%05d", i), i))
	}
	must(t, s.UpsertAllocs(2, first))
	watched := "sim-00007"
	for _, tc := range []struct {
		name  string
		write func(index uint64) error
		wake  bool
	}{
		{"placement on a neighbour", func(i uint64) error {
			return s.UpsertAllocs(i, []*structs.Allocation{testAlloc("b1", "j", "sim-00008", 60)})
		}, false},
		{"placement on a new node", func(i uint64) error {
			return s.UpsertAllocs(i, []*structs.Allocation{testAlloc("b2", "j", "sim-000071", 61)})
		}, false},
		{"the node's own report", func(i uint64) error {
			_, err := s.UpdateAllocsFromClient(i, watched, []*structs.AllocClientUpdate{{ID: "a7", ClientStatus: structs.AllocClientRunning}}, 1)
			return err
		}, false},
		{"placement on the node", func(i uint64) error {
			return s.UpsertAllocs(i, []*structs.Allocation{testAlloc("b3", "j", watched, 62)})
		}, true},
		{"job stop", func(i uint64) error { return s.StopJob(i, "j", 1) }, true},
		{"job purge", func(i uint64) error { return s.PurgeJob(i, "j") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := memdb.NewWatchSet()
			before := s.Snapshot().NodeAllocIndexWatch(ws, watched)
			index := s.Snapshot().Index() + 1
			must(t, tc.write(index))
			after := s.Snapshot().NodeAllocIndexWatch(nil, watched)
			if got := fired(ws); got != tc.wake {
				t.Fatalf("watch fired = %v, want %v", got, tc.wake)
			}
			if tc.wake && after != index || !tc.wake && after != before {
				t.Fatalf("node index %d -> %d after write at %d (wake %v)", before, after, index, tc.wake)
			}
		})
	}
}

func TestNodeAllocIndexRebuiltOnRestore(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(1, &structs.Job{ID: "j", Name: "j", Count: 2}))
	must(t, s.UpsertAllocs(5, []*structs.Allocation{testAlloc("a1", "j", "n1", 0)}))
	must(t, s.UpsertAllocs(9, []*structs.Allocation{testAlloc("a2", "j", "n2", 1)}))
	var buf bytes.Buffer
	must(t, s.Snapshot().Persist(&buf))
	r := newStore(t)
	must(t, r.Restore(&buf))
	snap := r.Snapshot()
	if a, b := snap.NodeAllocIndexWatch(nil, "n1"), snap.NodeAllocIndexWatch(nil, "n2"); a != 5 || b != 9 {
		t.Fatalf("restored node indexes %d, %d; want 5, 9", a, b)
	}
}
