package schedtest

import (
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestPlannerApply(t *testing.T) {
	job := Job("web", 3, 600, 100)
	place := func(id, node string) *structs.Allocation {
		a := Alloc(job, 0, node)
		a.ID, a.ClientStatus = id, structs.AllocClientPending
		return a
	}
	tests := []struct {
		name         string
		allOrNothing bool
		placements   []*structs.Allocation
		wantPlaced   []string
		wantRejected []string
	}{
		{"fits", false, []*structs.Allocation{place("p1", "n1"), place("p2", "n2")}, []string{"p1", "p2"}, nil},
		{"one node over capacity", false, []*structs.Allocation{place("p1", "n1"), place("p2", "n1"), place("p3", "n2")}, []string{"p3"}, []string{"n1"}},
		{"all or nothing", true, []*structs.Allocation{place("p1", "n1"), place("p2", "n1"), place("p3", "n2")}, nil, []string{"n1", "n2"}},
		{"missing node", false, []*structs.Allocation{place("p1", "nx")}, nil, []string{"nx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState()
			st.UpsertNode(Node("n1", 1000, 1024))
			st.UpsertNode(Node("n2", 1000, 1024))
			st.UpsertJob(job)
			old := Alloc(job, 1, "n2")
			st.UpsertAllocs(old)
			plan := &structs.Plan{
				JobID: "web", Placements: tt.placements, AllOrNothing: tt.allOrNothing,
				Stops: []structs.AllocStop{{AllocID: old.ID, NodeID: "n2", Desired: structs.AllocDesiredStop, Description: "scaled down"}},
			}
			res, err := NewPlanner(st).SubmitPlan(t.Context(), plan)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Placed; !slices.Equal(got, tt.wantPlaced) {
				t.Fatalf("placed %v, want %v", got, tt.wantPlaced)
			}
			if got := res.RejectedNodes; !slices.Equal(got, tt.wantRejected) {
				t.Fatalf("rejected %v, want %v", got, tt.wantRejected)
			}
			// Stops apply whatever happens to placements.
			if a := st.Alloc(old.ID); a.DesiredStatus != structs.AllocDesiredStop || a.DesiredDescription != "scaled down" {
				t.Fatalf("stop not applied: %+v", a)
			}
			if err := st.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckInvariantsReportsOverCommit(t *testing.T) {
	st := NewState()
	st.UpsertNode(Node("n1", 1000, 1024))
	job := Job("web", 2, 600, 100)
	st.UpsertAllocs(Alloc(job, 0, "n1"), Alloc(job, 1, "n1")) // fixtures bypass the check
	if err := st.CheckInvariants(); err == nil {
		t.Fatal("over-commit not reported")
	}
}
