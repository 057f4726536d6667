package structs

// GCRequest deletes what the leader chose for garbage collection
// (GCRequestType). The leader picks the allocations and jobs from its
// state at Time, which it chose before proposing; applying the entry reads
// no clock. The FSM deletes an allocation only if it is still collectable
// (terminal and not running on its node) and a job only if it is still at
// ModifyIndex, stopped or a finished batch job, with every allocation
// collectable: a job registered again meanwhile, or an allocation that
// changed, is kept. A large collection is split into several requests
// (Config.GCBatchSize), a job's allocations before the job.
type GCRequest struct {
	Allocs []string `json:"allocs,omitempty"`
	Jobs   []GCJob  `json:"jobs,omitempty"`
	Time   int64    `json:"time"`
}

// GCJob names a job to delete at the version the leader saw.
type GCJob struct {
	ID          string `json:"id"`
	ModifyIndex uint64 `json:"modify_index"`
}
