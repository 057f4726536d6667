package structs

// Message types added for throughput (issue 4). Numbered apart from the
// iota block so that types appended there by other work never collide.
const (
	// AllocClientUpdateBatchRequestType carries many nodes' reports in
	// one entry (the server coalesces concurrent reports).
	AllocClientUpdateBatchRequestType MessageType = 64
)

// AllocClientUpdateBatchRequest applies several nodes' reports in one
// transaction; each node still speaks only for its own allocations.
type AllocClientUpdateBatchRequest struct {
	Nodes []AllocClientUpdateRequest `json:"nodes"`
}
