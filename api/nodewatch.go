package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// The multiplexed node watch (POST /v1/nodes/allocations/watch), batched
// reports (POST /v1/nodes/allocations) and batched heartbeats
// (PUT /v1/nodes/heartbeat). See docs/api.md.

// MaxWatchNodes bounds the nodes of one watch request.
const MaxWatchNodes = 10000

// NodeWatchRequest is the body of POST /v1/nodes/allocations/watch: the
// nodes to watch, each with what the caller already holds.
type NodeWatchRequest struct {
	Nodes map[string]NodeWatchState `json:"nodes"`
}

// NodeWatchState is what a caller holds of one node's allocations: Index
// is the node's index from the last answer (0: nothing yet, send the full
// list) and Known the number of allocations it holds from answers (every
// allocation listed, terminal ones included; the server compares it to
// detect removals).
type NodeWatchState struct {
	Index uint64 `json:"index"`
	Known int    `json:"known"`
}

// NodeWatchFrame is one answer of the watch: the whole body of a long
// poll, or one line of a stream (?stream=true).
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

// NodeAllocChanges is a decoded NodeAllocDelta, jobs attached.
type NodeAllocChanges struct {
	Index    uint64
	Full     bool
	Allocs   []*Allocation
	NotFound bool
}

// NodeWatch reads the answers of a watch, one per Next. Not safe for
// concurrent use.
type NodeWatch struct {
	body io.ReadCloser
	dec  *json.Decoder
	jobs map[int]*Job
	// Index is the server's state index when the watch was answered.
	Index uint64
	// FrameTime is the server's send time of the last frame Next
	// returned (unix nanoseconds; 0 if the server does not say).
	FrameTime int64
}

// WatchNodeAllocations watches many nodes' allocations in one request
// (POST /v1/nodes/allocations/watch). With stream the server keeps the
// request open and sends a frame whenever any of the nodes changes (the
// first at once), until wait passes (0: the server's default, 5m) or ctx
// ends; without, it answers one frame when something changed or wait
// passed. The caller closes the watch.
func (c *Client) WatchNodeAllocations(ctx context.Context, req *NodeWatchRequest, stream bool, wait time.Duration) (*NodeWatch, error) {
	q := url.Values{}
	if stream {
		q.Set("stream", "true")
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	resp, err := c.raw(ctx, "POST", "/v1/nodes/allocations/watch", q, req) //nolint:bodyclose // NodeWatch.Close closes it
	if err != nil {
		return nil, err
	}
	w := &NodeWatch{body: resp.Body, dec: json.NewDecoder(resp.Body), jobs: map[int]*Job{}}
	w.Index, _ = strconv.ParseUint(resp.Header.Get(IndexHeader), 10, 64)
	return w, nil
}

// Next returns the next frame's changes by node, with each allocation's
// job attached. It returns io.EOF when the server ended the answer.
func (w *NodeWatch) Next() (uint64, map[string]*NodeAllocChanges, error) {
	var f NodeWatchFrame
	if err := w.dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, fmt.Errorf("node watch: decoding a frame: %w", err)
	}
	w.FrameTime = f.Time
	for ref, j := range f.Jobs {
		if j != nil {
			w.jobs[ref] = j
		}
	}
	out := make(map[string]*NodeAllocChanges, len(f.Nodes))
	for id, d := range f.Nodes {
		if d == nil {
			continue
		}
		ch := &NodeAllocChanges{Index: d.Index, Full: d.Full, NotFound: d.NotFound,
			Allocs: make([]*Allocation, 0, len(d.Allocs))}
		for _, wa := range d.Allocs {
			if wa == nil || wa.Allocation == nil {
				continue
			}
			a := wa.Allocation
			if wa.JobRef != 0 {
				j := w.jobs[wa.JobRef]
				if j == nil {
					return 0, nil, fmt.Errorf("node watch: allocation %s refers to job %d, which was not sent", a.ID, wa.JobRef)
				}
				a.Job = j
			}
			ch.Allocs = append(ch.Allocs, a)
		}
		out[id] = ch
	}
	return f.Index, out, nil
}

// Close ends the watch.
func (w *NodeWatch) Close() error { return w.body.Close() }

// NodesAllocUpdateRequest is the body of POST /v1/nodes/allocations: many
// nodes' reports in one request.
type NodesAllocUpdateRequest struct {
	Nodes map[string][]*AllocClientUpdate `json:"nodes"`
}

// NodesAllocUpdateResponse answers it: the index at which the reports
// applied and the nodes the server does not know (their reports were not
// applied: register them again).
type NodesAllocUpdateResponse struct {
	Index   uint64   `json:"index"`
	Unknown []string `json:"unknown,omitempty"`
}

// UpdateNodesAllocations reports status changes of many nodes at once
// (POST /v1/nodes/allocations).
func (c *Client) UpdateNodesAllocations(ctx context.Context, updates map[string][]*AllocClientUpdate) (*NodesAllocUpdateResponse, error) {
	var out NodesAllocUpdateResponse
	_, err := c.do(ctx, "POST", "/v1/nodes/allocations", nil, &NodesAllocUpdateRequest{Nodes: updates}, &out)
	return &out, err
}

// NodesHeartbeatRequest is the body of PUT /v1/nodes/heartbeat.
type NodesHeartbeatRequest struct {
	NodeIDs []string `json:"node_ids"`
}

// NodesHeartbeatResponse answers it: the TTL of every node renewed, and
// the nodes the server does not know (register them again).
type NodesHeartbeatResponse struct {
	HeartbeatTTL Duration `json:"heartbeat_ttl"`
	Index        uint64   `json:"index"`
	Unknown      []string `json:"unknown,omitempty"`
}

// HeartbeatNodes renews many nodes' TTLs at once (PUT /v1/nodes/heartbeat);
// each node keeps its own TTL timer.
func (c *Client) HeartbeatNodes(ctx context.Context, nodeIDs []string) (*NodesHeartbeatResponse, error) {
	var out NodesHeartbeatResponse
	_, err := c.do(ctx, "PUT", "/v1/nodes/heartbeat", nil, &NodesHeartbeatRequest{NodeIDs: nodeIDs}, &out)
	return &out, err
}
