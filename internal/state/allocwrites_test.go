package state

import (
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestRecordAllocWrites: while recording, a committed write appends the
// versions it stored, in the order written; an allocation written twice
// in one write is flagged; a failed write and writes after recording
// stops record nothing.
func TestRecordAllocWrites(t *testing.T) {
	s := newStore(t)
	index := uint64(10)
	for _, tc := range []struct {
		name      string
		write     func(index uint64) error
		want      []string
		again     bool
		wantError bool
	}{
		{"placements", func(i uint64) error {
			return s.UpsertAllocs(i, []*structs.Allocation{testAlloc("c", "j", "n1", 2), testAlloc("a", "j", "n2", 0), testAlloc("b", "j", "n1", 1)})
		}, []string{"c", "a", "b"}, false, false},
		{"reports, one for an unknown allocation", func(i uint64) error {
			_, err := s.UpdateAllocsFromClientBatch(i, []structs.AllocClientUpdateRequest{
				{NodeID: "n1", Updates: []*structs.AllocClientUpdate{{ID: "b", ClientStatus: structs.AllocClientRunning}, {ID: "zz"}}},
				{NodeID: "n2", Updates: []*structs.AllocClientUpdate{{ID: "a", ClientStatus: structs.AllocClientRunning}}}})
			return err
		}, []string{"b", "a"}, false, false},
		{"one allocation reported twice", func(i uint64) error {
			_, err := s.UpdateAllocsFromClientBatch(i, []structs.AllocClientUpdateRequest{
				{NodeID: "n1", Updates: []*structs.AllocClientUpdate{{ID: "c", ClientStatus: structs.AllocClientRunning}}},
				{NodeID: "n1", Updates: []*structs.AllocClientUpdate{{ID: "c", ClientStatus: structs.AllocClientComplete}}}})
			return err
		}, []string{"c", "c"}, true, false},
		{"a failed write", func(i uint64) error {
			return s.UpsertAllocs(i, []*structs.Allocation{testAlloc("d", "j", "n1", 3), {ID: "e"}})
		}, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			index++
			w := &AllocWrites{}
			s.RecordAllocWrites(w)
			err := tc.write(index)
			s.RecordAllocWrites(nil)
			if (err != nil) != tc.wantError {
				t.Fatalf("write: %v", err)
			}
			if got := ids(w.Allocs); !slices.Equal(got, tc.want) || w.Again != tc.again {
				t.Fatalf("recorded %q (again %v), want %q (again %v)", got, w.Again, tc.want, tc.again)
			}
			snap := s.Snapshot()
			for i, a := range w.Allocs {
				if a.ModifyIndex != index {
					t.Fatalf("recorded %s at %d, written at %d", a.ID, a.ModifyIndex, index)
				}
				// The last version recorded of each is the one stored.
				if !slices.ContainsFunc(w.Allocs[i+1:], func(b *structs.Allocation) bool { return b.ID == a.ID }) && snap.AllocByID(a.ID) != a {
					t.Fatalf("recorded version of %s is not the one stored", a.ID)
				}
			}
		})
	}
	// Not recording: nothing is kept.
	w := &AllocWrites{}
	s.RecordAllocWrites(w)
	s.RecordAllocWrites(nil)
	must(t, s.UpsertAllocs(20, []*structs.Allocation{testAlloc("f", "j", "n1", 4)}))
	if len(w.Allocs) != 0 {
		t.Fatalf("recorded %q after recording stopped", ids(w.Allocs))
	}
}
