package state

import (
	"fmt"
	"slices"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

type feedRow struct {
	node  string
	index uint64
}

func feedSince(s *Store, after uint64) []feedRow {
	var out []feedRow
	s.Snapshot().NodeAllocChangesSince(after, func(id string, idx uint64) bool {
		out = append(out, feedRow{id, idx})
		return true
	})
	return out
}

// TestNodeAllocFeed checks the change feed: the rows above a cursor are
// the nodes changed after it, each once with its latest index, in index
// order; agents' reports do not enter it; its watch fires for server-side
// changes to any node and not for reports.
func TestNodeAllocFeed(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(1, &structs.Job{ID: "j", Name: "j", Count: 100}))
	var first []*structs.Allocation
	for i := range 10 {
		first = append(first, testAlloc(fmt.Sprint("a", i), "j", fmt.Sprintf("n%d", i), i))
	}
	must(t, s.UpsertAllocs(2, first))
	if got := feedSince(s, 1); len(got) != 10 || got[0].index != 2 {
		t.Fatalf("feed since 1 = %v, want 10 rows at index 2", got)
	}
	if got := feedSince(s, 2); len(got) != 0 {
		t.Fatalf("feed since 2 = %v, want none", got)
	}
	must(t, s.UpsertAllocs(3, []*structs.Allocation{testAlloc("b1", "j", "n3", 20)}))
	must(t, s.UpsertAllocs(4, []*structs.Allocation{testAlloc("b2", "j", "n5", 21), testAlloc("b3", "j", "n3", 22)}))

	for _, tc := range []struct {
		after uint64
		want  []feedRow
	}{
		{2, []feedRow{{"n3", 4}, {"n5", 4}}},
		{3, []feedRow{{"n3", 4}, {"n5", 4}}},
		{4, nil},
		{^uint64(0), nil},
	} {
		got := feedSince(s, tc.after)
		slices.SortFunc(got, func(a, b feedRow) int {
			if a.index != b.index {
				return int(a.index) - int(b.index)
			}
			if a.node < b.node {
				return -1
			}
			return 1
		})
		if !slices.Equal(got, tc.want) {
			t.Errorf("feed since %d = %v, want %v", tc.after, got, tc.want)
		}
	}
	// Ordered by index, and fn can stop the scan.
	var order []uint64
	s.Snapshot().NodeAllocChangesSince(0, func(_ string, idx uint64) bool {
		order = append(order, idx)
		return len(order) < 5
	})
	if len(order) != 5 || !slices.IsSorted(order) {
		t.Errorf("scan = %v, want 5 indexes in order", order)
	}

	ws := memdb.NewWatchSet()
	s.Snapshot().NodeAllocFeedWatch(ws)
	_, err := s.UpdateAllocsFromClient(5, "n1", []*structs.AllocClientUpdate{{ID: "a1", ClientStatus: structs.AllocClientRunning}}, 1)
	must(t, err)
	if fired(ws) {
		t.Fatal("feed watch fired for an agent's report")
	}
	if got := feedSince(s, 4); len(got) != 0 {
		t.Fatalf("report entered the feed: %v", got)
	}
	must(t, s.StopJob(6, "j", 1))
	if !fired(ws) {
		t.Fatal("feed watch did not fire for a job stop")
	}
	if got := feedSince(s, 5); len(got) != 10 {
		t.Fatalf("feed after stop = %v, want the 10 nodes", got)
	}
	if idx, ok := s.Snapshot().NodeAllocIndex("n3"); !ok || idx != 6 {
		t.Errorf("NodeAllocIndex(n3) = %d, %v; want 6, true", idx, ok)
	}
	if _, ok := s.Snapshot().NodeAllocIndex("nobody"); ok {
		t.Error("NodeAllocIndex of a node without allocations reported a row")
	}
}

// TestNodeAllocDelta checks the node watch's delta against the store's
// writes: placements and stops move it, agents' reports do not.
func TestNodeAllocDelta(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertJob(1, testJob("j")))
	must(t, s.UpsertAllocs(2, []*structs.Allocation{testAlloc("a1", "j", "n1", 0), testAlloc("a2", "j", "n1", 1)}))
	must(t, report(s, 3, "n1", "a2"))
	stop := s.Snapshot().AllocByID("a1").Copy()
	stop.DesiredStatus = structs.AllocDesiredStop
	must(t, s.UpsertAllocs(4, []*structs.Allocation{stop}))
	must(t, s.UpsertAllocs(5, []*structs.Allocation{testAlloc("a3", "j", "n1", 2)}))
	for _, tc := range []struct {
		since       uint64
		want        []string
		held, total int
	}{
		{0, []string{"a1", "a2", "a3"}, 0, 3},
		{2, []string{"a1", "a3"}, 2, 3},
		{3, []string{"a1", "a3"}, 2, 3},
		{4, []string{"a3"}, 2, 3},
		{5, nil, 3, 3},
	} {
		var got []string
		held, total := s.Snapshot().NodeAllocDelta("n1", tc.since, func(a *structs.Allocation) { got = append(got, a.ID) })
		if !slices.Equal(got, tc.want) || held != tc.held || total != tc.total {
			t.Errorf("since %d: %v held %d of %d, want %v held %d of %d", tc.since, got, held, total, tc.want, tc.held, tc.total)
		}
	}
	if held, total := s.Snapshot().NodeAllocDelta("none", 0, func(*structs.Allocation) { t.Error("called") }); held != 0 || total != 0 {
		t.Errorf("unknown node: held %d of %d", held, total)
	}
}
