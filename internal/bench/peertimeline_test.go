package bench

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestPeerTimeline: a run's timeline counts each copy once (its first
// allocation), in the bucket of its admission, splits submit-to-placed
// into its stages, flags copies admitted over a second after they were
// proposed, and credits the jobs to their owners and the copies to the
// peers that ran them.
func TestPeerTimeline(t *testing.T) {
	t0 := time.Unix(100, 0)
	ms := func(n int64) int64 { return t0.UnixNano() + n*int64(time.Millisecond) }
	received := func(at int64) structs.TaskState {
		return structs.TaskState{Events: []structs.TaskEvent{{Type: "Received", Time: at}}}
	}
	rec := peerRecords{
		allocs: []*structs.Allocation{
			// a[0] on peer B: proposed at 20, admitted at 50; replaced at 400
			{JobID: "a", Index: 0, NodeID: "B", CreateIndex: 1, CreateTime: ms(20), TaskState: received(ms(50))},
			{JobID: "a", Index: 0, NodeID: "A", CreateIndex: 5, CreateTime: ms(400), TaskState: received(ms(410))},
			// a[1] on A: admitted 1.2 s after its proposal (sent again)
			{JobID: "a", Index: 1, NodeID: "A", CreateIndex: 2, CreateTime: ms(30), TaskState: received(ms(1230))},
			// b[0] on B, pending: the owner's record of the answer
			{JobID: "b", Index: 0, NodeID: "B", CreateIndex: 3, CreateTime: ms(160), ModifyTime: ms(250), ClientStatus: structs.AllocClientPending},
			// not this run's
			{JobID: "x", Index: 0, NodeID: "A", CreateIndex: 4, CreateTime: ms(10)},
		},
		owner:      map[string]int{"a": 0, "b": 1},
		registered: map[string]int64{"a": ms(10), "b": ms(150)},
		acked:      map[string]int64{"a": ms(15), "b": ms(170)},
	}
	stats := []*peerexec.Stats{{Proposed: 2}, nil}
	tl := peerTimeline(rec, []string{"A", "B"}, stats, map[string]int64{"a": ms(0), "b": ms(140)}, t0)

	tests := []struct {
		name      string
		got, want []int
	}{
		{"placed", tl.Placed, []int{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"submitted", tl.Submitted, []int{1, 1}},
		{"acked", tl.Acked, []int{1, 1}},
	}
	for _, tc := range tests {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s per 100 ms: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if tl.AdmittedLate != 1 || tl.SubmitToRegistered.N != 2 || tl.SubmitToAcked.Max != 30 || tl.RegisteredToProposed.N != 3 ||
		tl.ProposedToAdmitted.Max != 1200 {
		t.Errorf("stages: late %d, to registered %+v, to acked %+v, to proposed %+v, to admitted %+v", tl.AdmittedLate,
			tl.SubmitToRegistered, tl.SubmitToAcked, tl.RegisteredToProposed, tl.ProposedToAdmitted)
	}
	want := []PeerShare{
		{Name: "peer-1", OwnedJobs: 1, OwnedCopies: 2, RanCopies: 1, LastPlacedMS: 1230, Exec: stats[0]},
		{Name: "peer-2", OwnedJobs: 1, OwnedCopies: 1, RanCopies: 2, LastPlacedMS: 250},
	}
	if !slices.Equal(tl.Peers, want) {
		t.Errorf("peers %+v, want %+v", tl.Peers, want)
	}
}
