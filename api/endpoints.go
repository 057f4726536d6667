package api

import (
	"context"
	"io"
	"net/url"
	"strconv"
)

// --- jobs ---

// RegisterJob creates or updates a job (PUT /v1/jobs).
func (c *Client) RegisterJob(ctx context.Context, job *Job) (*JobRegisterResponse, error) {
	var out JobRegisterResponse
	_, err := c.do(ctx, "PUT", "/v1/jobs", c.nsQuery(job.Namespace), &JobRegisterRequest{Job: job}, &out)
	return &out, err
}

// ListJobs lists jobs (GET /v1/jobs).
func (c *Client) ListJobs(ctx context.Context, q *QueryOptions) ([]*JobListStub, *QueryMeta, error) {
	var out []*JobListStub
	meta, err := c.do(ctx, "GET", "/v1/jobs", c.nsValues(q), nil, &out)
	return out, meta, err
}

// Job reads one job (GET /v1/job/{id}).
func (c *Client) Job(ctx context.Context, id string, q *QueryOptions) (*Job, *QueryMeta, error) {
	var out Job
	meta, err := c.do(ctx, "GET", "/v1/job/"+url.PathEscape(id), c.nsValues(q), nil, &out)
	return &out, meta, err
}

// JobStatus reads a job with its allocations and placement failure
// (GET /v1/job/{id}/status).
func (c *Client) JobStatus(ctx context.Context, id string, q *QueryOptions) (*JobStatusResponse, *QueryMeta, error) {
	var out JobStatusResponse
	meta, err := c.do(ctx, "GET", "/v1/job/"+url.PathEscape(id)+"/status", c.nsValues(q), nil, &out)
	return &out, meta, err
}

// JobAllocations lists a job's allocations (GET /v1/job/{id}/allocations).
func (c *Client) JobAllocations(ctx context.Context, id string, q *QueryOptions) ([]*Allocation, *QueryMeta, error) {
	var out []*Allocation
	meta, err := c.do(ctx, "GET", "/v1/job/"+url.PathEscape(id)+"/allocations", c.nsValues(q), nil, &out)
	return out, meta, err
}

// ScaleJob changes a job's count (POST /v1/job/{id}/scale).
func (c *Client) ScaleJob(ctx context.Context, id string, count int) (*JobRegisterResponse, error) {
	return c.ScaleJobGroup(ctx, id, "", count)
}

// ScaleJobGroup changes the count of one task group of a job; group may
// be "" for a job with one group.
func (c *Client) ScaleJobGroup(ctx context.Context, id, group string, count int) (*JobRegisterResponse, error) {
	var out JobRegisterResponse
	_, err := c.do(ctx, "POST", "/v1/job/"+url.PathEscape(id)+"/scale", c.nsQuery(""), &JobScaleRequest{Count: count, Group: group}, &out)
	return &out, err
}

// StopJob stops a job, or removes it and its allocations with purge
// (DELETE /v1/job/{id}[?purge=true]).
func (c *Client) StopJob(ctx context.Context, id string, purge bool) (*JobRegisterResponse, error) {
	q := c.nsValues(nil)
	if purge {
		q.Set("purge", "true")
	}
	var out JobRegisterResponse
	_, err := c.do(ctx, "DELETE", "/v1/job/"+url.PathEscape(id), q, nil, &out)
	return &out, err
}

// SystemGC runs garbage collection on the leader now, ignoring the age
// thresholds: terminal allocations and finished jobs are deleted, except
// the allocations the scheduler still reads (POST /v1/system/gc).
func (c *Client) SystemGC(ctx context.Context) (*GCResponse, error) {
	var out GCResponse
	_, err := c.do(ctx, "POST", "/v1/system/gc", nil, struct{}{}, &out)
	return &out, err
}

// --- nodes ---

// RegisterNode registers an agent's node (POST /v1/node/register).
func (c *Client) RegisterNode(ctx context.Context, n *Node) (*NodeRegisterResponse, error) {
	var out NodeRegisterResponse
	_, err := c.do(ctx, "POST", "/v1/node/register", nil, &NodeRegisterRequest{Node: n}, &out)
	return &out, err
}

// Heartbeat renews a node's TTL (POST /v1/node/{id}/heartbeat). A 404
// (IsNotFound) means the server does not know the node: register again.
func (c *Client) Heartbeat(ctx context.Context, nodeID string) (*HeartbeatResponse, error) {
	var out HeartbeatResponse
	_, err := c.do(ctx, "POST", "/v1/node/"+url.PathEscape(nodeID)+"/heartbeat", nil, struct{}{}, &out)
	return &out, err
}

// ListNodes lists nodes (GET /v1/nodes).
func (c *Client) ListNodes(ctx context.Context, q *QueryOptions) ([]*Node, *QueryMeta, error) {
	var out []*Node
	meta, err := c.do(ctx, "GET", "/v1/nodes", q.values(), nil, &out)
	return out, meta, err
}

// Node reads one node (GET /v1/node/{id}); id may be a unique prefix or the
// node's name.
func (c *Client) Node(ctx context.Context, id string, q *QueryOptions) (*Node, *QueryMeta, error) {
	var out Node
	meta, err := c.do(ctx, "GET", "/v1/node/"+url.PathEscape(id), q.values(), nil, &out)
	return &out, meta, err
}

// DrainNode turns draining on or off (POST /v1/node/{id}/drain).
func (c *Client) DrainNode(ctx context.Context, id string, enable bool) (*IndexResponse, error) {
	return c.DrainNodeWith(ctx, id, &NodeDrainRequest{Enable: enable})
}

// DrainNodeWith turns draining on or off with a deadline (POST
// /v1/node/{id}/drain).
func (c *Client) DrainNodeWith(ctx context.Context, id string, req *NodeDrainRequest) (*IndexResponse, error) {
	var out IndexResponse
	_, err := c.do(ctx, "POST", "/v1/node/"+url.PathEscape(id)+"/drain", nil, req, &out)
	return &out, err
}

// NodeAllocations lists the allocations assigned to a node, with their
// jobs embedded (GET /v1/node/{id}/allocations). Agents call it as a
// blocking query to learn their work.
func (c *Client) NodeAllocations(ctx context.Context, nodeID string, q *QueryOptions) ([]*Allocation, *QueryMeta, error) {
	var out []*Allocation
	meta, err := c.do(ctx, "GET", "/v1/node/"+url.PathEscape(nodeID)+"/allocations", q.values(), nil, &out)
	return out, meta, err
}

// NodeAllocationsKnown is NodeAllocations for a caller that holds known
// allocations from its last answer: the query then wakes only for
// server-side changes to this node's allocations (not for other nodes'
// plans or for this node's own reports), and with changesOnly the answer
// lists only the allocations changed after q.WaitIndex unless meta.Full
// says it is the whole list (the caller's view was stale).
func (c *Client) NodeAllocationsKnown(ctx context.Context, nodeID string, q *QueryOptions, known int, changesOnly bool) ([]*Allocation, *QueryMeta, error) {
	v := q.values()
	v.Set("known", strconv.Itoa(known))
	if changesOnly {
		v.Set("changes", "true")
	}
	var out []*Allocation
	meta, err := c.do(ctx, "GET", "/v1/node/"+url.PathEscape(nodeID)+"/allocations", v, nil, &out)
	return out, meta, err
}

// UpdateAllocations reports task status changes from a node
// (POST /v1/node/{id}/allocations).
//
// The reports go in binary, as UpdateNodesAllocations's do.
func (c *Client) UpdateAllocations(ctx context.Context, nodeID string, updates []*AllocClientUpdate) (*IndexResponse, error) {
	var out IndexResponse
	path := "/v1/node/" + url.PathEscape(nodeID) + "/allocations"
	err := c.sendReports(ctx, path, map[string][]*AllocClientUpdate{nodeID: updates}, &out,
		func() error {
			_, err := c.do(ctx, "POST", path, nil, &AllocUpdateRequest{Updates: updates}, &out)
			return err
		})
	return &out, err
}

// --- allocations ---

// ListAllocations lists allocations without their jobs (GET /v1/allocations).
func (c *Client) ListAllocations(ctx context.Context, q *QueryOptions) ([]*Allocation, *QueryMeta, error) {
	var out []*Allocation
	meta, err := c.do(ctx, "GET", "/v1/allocations", c.nsValues(q), nil, &out)
	return out, meta, err
}

// Allocation reads one allocation (GET /v1/allocation/{id}); id may be a
// unique prefix.
func (c *Client) Allocation(ctx context.Context, id string, q *QueryOptions) (*Allocation, *QueryMeta, error) {
	var out Allocation
	meta, err := c.do(ctx, "GET", "/v1/allocation/"+url.PathEscape(id), c.nsValues(q), nil, &out)
	return &out, meta, err
}

// LogOptions select a task log.
type LogOptions struct {
	// Stream is "stdout" (default) or "stderr".
	Stream string
	// Follow keeps the stream open and sends new output as it is written.
	Follow bool
	// Offset skips this many bytes from the start.
	Offset int64
	// Task names the task ("" = the main task, named after the job).
	Task string
}

// AllocLogs streams an allocation's task log through the server
// (GET /v1/allocation/{id}/logs). The caller closes the reader.
func (c *Client) AllocLogs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error) {
	q := c.nsValues(nil)
	if o.Stream != "" {
		q.Set("type", o.Stream)
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.FormatInt(o.Offset, 10))
	}
	if o.Task != "" {
		q.Set("task", o.Task)
	}
	resp, err := c.raw(ctx, "GET", "/v1/allocation/"+url.PathEscape(id)+"/logs", q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// --- status ---

// Leader returns the address of the current Raft leader.
func (c *Client) Leader(ctx context.Context) (string, error) {
	var out LeaderResponse
	_, err := c.do(ctx, "GET", "/v1/status/leader", nil, nil, &out)
	return out.Leader, err
}

// SchedulerStatus returns the scheduler's figures.
func (c *Client) SchedulerStatus(ctx context.Context) (*SchedulerStatus, error) {
	var out SchedulerStatus
	_, err := c.do(ctx, "GET", "/v1/scheduler/status", nil, nil, &out)
	return &out, err
}
