package structs

// The node watch's frames (POST /v1/nodes/allocations/watch), defined here
// so that their binary encoding (codec_watch.go) can live with the other
// codecs; api aliases them. See docs/api.md.

// NodeWatchFrame is one answer of the watch: the whole body of a long
// poll, or one frame of a stream (?stream=true).
type NodeWatchFrame struct {
	// Index is the state index the frame was read at.
	Index uint64 `json:"index"`
	// Time is when the server sent the frame (unix nanoseconds; 0 from
	// servers that do not say), for measuring delivery.
	Time int64 `json:"time,omitempty"`
	// Jobs are the jobs that allocations of this frame refer to (JobRef)
	// and that this answer or stream has not sent before: each version of
	// a job is sent once, not embedded in every allocation.
	Jobs map[int]*Job `json:"jobs,omitempty"`
	// Nodes holds the nodes that changed; nodes without changes are left
	// out.
	Nodes map[string]*NodeAllocDelta `json:"nodes,omitempty"`
}

// NodeAllocDelta is what changed on one node.
type NodeAllocDelta struct {
	// Index is the node's new index: pass it back in NodeWatchState.
	Index uint64 `json:"index"`
	// Full says Allocs is the node's whole list (the caller's view was
	// stale: index 0, a removal, or a server with another history) and
	// the caller must drop what is not in it; else Allocs holds only the
	// allocations the server changed since the caller's index.
	Full   bool          `json:"full,omitempty"`
	Allocs []*WatchAlloc `json:"allocs,omitempty"`
	// NotFound says the server does not know the node: register it again.
	NotFound bool `json:"not_found,omitempty"`
}

// WatchAlloc is an allocation on the watch's wire: the allocation without
// its job (Job is nil) and JobRef, the key of the job in a frame's Jobs
// (0: no job).
type WatchAlloc struct {
	*Allocation
	JobRef int `json:"job_ref,omitempty"`
}
