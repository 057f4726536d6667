package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestStringArenaMatchesNewID: the arena hands out the same IDs NewID
// draws from the same seed and the same names as structs.AllocName, and
// strings handed out earlier survive later chunks.
func TestStringArenaMatchesNewID(t *testing.T) {
	for _, n := range []int{1, 7, 300, 2000} {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			want, got := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
			var a stringArena
			var ids, names, wantIDs, wantNames []string
			for i := range n {
				wantIDs = append(wantIDs, NewID(want))
				ids = append(ids, a.id(got))
				job := fmt.Sprintf("job-%d", i%13)
				wantNames = append(wantNames, structs.AllocName(job, i*7-3))
				names = append(names, a.name(job, i*7-3))
			}
			for i := range n {
				if ids[i] != wantIDs[i] || names[i] != wantNames[i] {
					t.Fatalf("#%d: %q %q, want %q %q", i, ids[i], names[i], wantIDs[i], wantNames[i])
				}
			}
		})
	}
}

// TestAllocSlabDistinct: every allocation handed out is a distinct, zeroed
// struct.
func TestAllocSlabDistinct(t *testing.T) {
	var s allocSlab
	seen := map[*structs.Allocation]bool{}
	for i := range 1000 {
		a := s.get()
		if seen[a] || a.ID != "" {
			t.Fatalf("#%d: reused or dirty allocation", i)
		}
		seen[a] = true
		a.ID = "x"
	}
}
