package structs

// AllocClientUpdateBatchRequest applies several nodes' reports in one
// transaction; each node still speaks only for its own allocations.
type AllocClientUpdateBatchRequest struct {
	Nodes []AllocClientUpdateRequest `json:"nodes"`
}
