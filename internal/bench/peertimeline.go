package bench

import (
	"strconv"
	"time"

	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// timelineBucket is the width of a peer run's timeline buckets.
const timelineBucket = 100 * time.Millisecond

// PeerTimeline is where a peer run spent its time (child-process runs,
// from the owners' records): copies placed and jobs submitted per bucket
// of 100 ms from the first submission, the stages of each copy's
// submit-to-placed, and how the jobs and the copies fell on the peers
// (an owner with more jobs, or a peer running more copies, ends last).
type PeerTimeline struct {
	BucketMS  int   `json:"bucket_ms"`
	Placed    []int `json:"placed"`    // copies placed (admitted by their peer) per bucket
	Submitted []int `json:"submitted"` // jobs submitted per bucket
	Acked     []int `json:"acked"`     // submissions acknowledged per bucket
	// per job: the bench sends it -> its owner takes it (SubmitTime,
	// before its record is written) -> the bench has the acknowledgement
	SubmitToRegistered Percentiles `json:"submit_to_registered"`
	SubmitToAcked      Percentiles `json:"submit_to_acked"`
	// per copy: its owner took the job -> proposed the copy (the
	// allocation's CreateTime) -> its peer admitted it (Received)
	RegisteredToProposed Percentiles `json:"registered_to_proposed"`
	ProposedToAdmitted   Percentiles `json:"proposed_to_admitted"`
	// AdmittedLate counts copies admitted more than AdmitTimeout (1 s)
	// after they were proposed: their admit was sent again.
	AdmittedLate int `json:"admitted_late"`
	// Peers: per peer (peer-1 ...), the jobs it owned, the copies of its
	// jobs, the copies it ran, when its jobs' last copy was placed and
	// its engine's counters at the end.
	Peers []PeerShare `json:"peers"`
}

// PeerShare is one peer's part in a run.
type PeerShare struct {
	Name         string          `json:"name"`
	OwnedJobs    int             `json:"owned_jobs"`
	OwnedCopies  int             `json:"owned_copies"`
	RanCopies    int             `json:"ran_copies"`
	LastPlacedMS float64         `json:"last_placed_ms"` // of its jobs' copies, from the first submission
	Exec         *peerexec.Stats `json:"exec,omitempty"`
}

// peerRecords is what a child-process run reads back from the owners.
type peerRecords struct {
	allocs     []*structs.Allocation
	owner      map[string]int   // job -> index of its owner
	registered map[string]int64 // job -> its owner's SubmitTime, Unix ns
	acked      map[string]int64 // job -> the bench's acknowledgement, Unix ns
}

// peerTimeline builds the timeline of a run from the owners' records:
// ids are the peers' node IDs (by index), submitted each job's
// submission (Unix ns), t0 the first.
func peerTimeline(rec peerRecords, ids []string, stats []*peerexec.Stats, submitted map[string]int64, t0 time.Time) *PeerTimeline {
	tl := &PeerTimeline{BucketMS: int(timelineBucket / time.Millisecond), Peers: make([]PeerShare, len(ids))}
	byID := map[string]int{}
	for i, id := range ids {
		byID[id] = i
		tl.Peers[i].Name = peerName(i)
		if i < len(stats) {
			tl.Peers[i].Exec = stats[i]
		}
	}
	bucket := func(at int64) int { return max(int(time.Duration(at-t0.UnixNano())/timelineBucket), 0) }
	add := func(s *[]int, b int) {
		for len(*s) <= b {
			*s = append(*s, 0)
		}
		(*s)[b]++
	}
	var toReg, toAck []time.Duration
	for job, at := range submitted {
		add(&tl.Submitted, bucket(at))
		if o, ok := rec.owner[job]; ok {
			tl.Peers[o].OwnedJobs++
		}
		if reg := rec.registered[job]; reg > 0 {
			toReg = append(toReg, time.Duration(max(reg-at, 0)))
		}
		if ack := rec.acked[job]; ack > 0 {
			add(&tl.Acked, bucket(ack))
			toAck = append(toAck, time.Duration(max(ack-at, 0)))
		}
	}
	tl.SubmitToRegistered, tl.SubmitToAcked = percentiles(toReg), percentiles(toAck)
	// the first allocation of each copy is its placement (later ones
	// replace it)
	type copyKey struct {
		job   string
		index int
	}
	first := map[copyKey]*structs.Allocation{}
	for _, a := range rec.allocs {
		if _, ok := submitted[a.JobID]; !ok {
			continue
		}
		k := copyKey{a.JobID, a.Index}
		if cur := first[k]; cur == nil || a.CreateIndex < cur.CreateIndex {
			first[k] = a
		}
	}
	var toProp, toAdm []time.Duration
	for _, a := range first {
		at := admittedAt(a)
		add(&tl.Placed, bucket(at))
		if reg := rec.registered[a.JobID]; reg > 0 {
			toProp = append(toProp, time.Duration(max(a.CreateTime-reg, 0)))
		}
		adm := time.Duration(max(at-a.CreateTime, 0))
		toAdm = append(toAdm, adm)
		if adm > time.Second {
			tl.AdmittedLate++
		}
		if o, ok := rec.owner[a.JobID]; ok {
			p := &tl.Peers[o]
			p.OwnedCopies++
			p.LastPlacedMS = max(p.LastPlacedMS, float64(time.Duration(at-t0.UnixNano()).Microseconds())/1000)
		}
		if i, ok := byID[a.NodeID]; ok {
			tl.Peers[i].RanCopies++
		}
	}
	tl.RegisteredToProposed, tl.ProposedToAdmitted = percentiles(toProp), percentiles(toAdm)
	return tl
}

// admittedAt is when a copy's peer admitted it: its task's Received
// event, or (not reported yet) the owner's record of the answer.
func admittedAt(a *structs.Allocation) int64 {
	for _, ev := range a.TaskState.Events {
		if ev.Type == "Received" {
			return ev.Time
		}
	}
	if a.ClientStatus == structs.AllocClientPending && a.ModifyTime > 0 {
		return a.ModifyTime
	}
	return a.CreateTime
}

// peerName names peer i of a run as its log file does.
func peerName(i int) string { return "peer-" + strconv.Itoa(i+1) }
