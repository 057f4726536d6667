package structs

// JobWrite is one job write of a batch: exactly one of Register and
// Deregister is set.
type JobWrite struct {
	Register   *JobRegisterRequest   `json:"register,omitempty"`
	Deregister *JobDeregisterRequest `json:"deregister,omitempty"`
}

// JobBatchRequest applies job writes in order, in one transaction. The
// server computed each write's version against the state plus the writes
// before it.
type JobBatchRequest struct {
	Writes []JobWrite `json:"writes"`
}
