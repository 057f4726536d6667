package structs

// GCRequest deletes what the leader chose for garbage collection
// (GCRequestType). The leader picks the allocations and jobs from its
// state at Time, which it chose before proposing; applying the entry reads
// no clock. A large collection is split into several requests
// (Config.GCBatchSize), a job's allocations before the job, except those
// the scheduler reads (a finished batch job's completed copies), which the
// job's own request deletes with it.
type GCRequest struct {
	Allocs []GCAllocs `json:"allocs,omitempty"`
	Jobs   []GCJob    `json:"jobs,omitempty"`
	Time   int64      `json:"time"`
}

// GCAllocs names allocations of one job to delete, chosen while the job
// was at ModifyIndex (0: its record was gone). The FSM deletes them only if
// the job is still at that index (still gone), since whether the
// scheduler needs an allocation depends on the job (its count, whether it
// is stopped), and only those still collectable (terminal, not running).
// The job index is one lookup: the FSM need not read the job's other
// allocations again.
type GCAllocs struct {
	JobID       string   `json:"job_id"`
	ModifyIndex uint64   `json:"modify_index"`
	IDs         []string `json:"ids"`
}

// GCJob names a job to delete at the version the leader saw; the FSM
// deletes it only if it is still at ModifyIndex, finished, and every
// allocation it has left is collectable.
type GCJob struct {
	ID          string `json:"id"`
	ModifyIndex uint64 `json:"modify_index"`
}
