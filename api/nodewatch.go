package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
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

// The frames of the watch: see internal/structs/nodewatch.go.
type (
	NodeWatchFrame = structs.NodeWatchFrame
	NodeAllocDelta = structs.NodeAllocDelta
	WatchAlloc     = structs.WatchAlloc
)

// NodeAllocChanges is a decoded NodeAllocDelta, jobs attached.
type NodeAllocChanges struct {
	Index    uint64
	Full     bool
	Allocs   []*Allocation
	NotFound bool
}

// FrameContentType is the media type of the node endpoints' binary
// encoding (docs/api.md, "Binary frames"): a watch asks for it with Accept
// and gets it when the server speaks it (else JSON), and batched reports
// send it as Content-Type.
const FrameContentType = "application/vnd.gantry.frame"

// MaxFrameBytes bounds one binary frame of a watch.
const MaxFrameBytes = 256 << 20

// NodeWatch reads the answers of a watch, one per Next. Not safe for
// concurrent use.
type NodeWatch struct {
	body io.ReadCloser
	dec  *json.Decoder // JSON answers
	br   *bufio.Reader // binary answers
	buf  []byte        // a binary frame, reused
	jobs map[int]*Job
	// Index is the server's state index when the watch was answered.
	Index uint64
	// FrameTime is the server's send time of the last frame Next
	// returned (unix nanoseconds; 0 if the server does not say).
	FrameTime int64
	// Binary says the server answered in binary frames.
	Binary bool
}

// WatchNodeAllocations watches many nodes' allocations in one request
// (POST /v1/nodes/allocations/watch). With stream the server keeps the
// request open and sends a frame whenever any of the nodes changes (the
// first at once), until wait passes (0: the server's default, 5m) or ctx
// ends; without, it answers one frame when something changed or wait
// passed. It asks for binary frames unless Config.NodeWireJSON is set, and
// reads whichever the server answers. The caller closes the watch.
func (c *Client) WatchNodeAllocations(ctx context.Context, req *NodeWatchRequest, stream bool, wait time.Duration) (*NodeWatch, error) {
	q := url.Values{}
	if stream {
		q.Set("stream", "true")
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	accept := ""
	if !c.nodeWireJSON {
		accept = FrameContentType + ", application/json;q=0.5"
	}
	resp, err := c.send(ctx, "POST", "/v1/nodes/allocations/watch", q, payload, "application/json", accept) //nolint:bodyclose // NodeWatch.Close closes it
	if err != nil {
		return nil, err
	}
	w := &NodeWatch{body: resp.Body, jobs: map[int]*Job{}}
	if mediaType(resp.Header.Get("Content-Type")) == FrameContentType {
		w.Binary, w.br = true, bufio.NewReaderSize(resp.Body, 64<<10)
	} else {
		w.dec = json.NewDecoder(resp.Body)
	}
	w.Index, _ = strconv.ParseUint(resp.Header.Get(IndexHeader), 10, 64)
	return w, nil
}

// AcceptsFrames reports whether Accept header values list
// FrameContentType (with a q above 0).
func AcceptsFrames(accept []string) bool {
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			typ, params, _ := strings.Cut(part, ";")
			if mediaType(typ) != FrameContentType {
				continue
			}
			refused := false
			for p := range strings.SplitSeq(params, ";") {
				k, val, _ := strings.Cut(p, "=")
				if strings.TrimSpace(k) == "q" {
					q, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					refused = err != nil || q <= 0
				}
			}
			if !refused {
				return true
			}
		}
	}
	return false
}

// mediaType is a Content-Type without its parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// next reads the next frame in the answer's encoding.
func (w *NodeWatch) next() (*NodeWatchFrame, error) {
	if !w.Binary {
		var f NodeWatchFrame
		if err := w.dec.Decode(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("node watch: decoding a frame: %w", err)
		}
		return &f, nil
	}
	// A binary frame: its length (uvarint), then the frame.
	n, err := binary.ReadUvarint(w.br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("node watch: reading a frame's length: %w", err)
	}
	if n > MaxFrameBytes {
		return nil, fmt.Errorf("node watch: frame of %d bytes is larger than %d", n, MaxFrameBytes)
	}
	if uint64(cap(w.buf)) < n {
		w.buf = make([]byte, n)
	}
	w.buf = w.buf[:n]
	if _, err := io.ReadFull(w.br, w.buf); err != nil {
		return nil, fmt.Errorf("node watch: reading a frame of %d bytes: %w", n, err)
	}
	f, err := structs.DecodeNodeWatchFrame(w.buf)
	if err != nil {
		return nil, fmt.Errorf("node watch: %w", err)
	}
	return f, nil
}

// Next returns the next frame's changes by node, with each allocation's
// job attached. It returns io.EOF when the server ended the answer.
func (w *NodeWatch) Next() (uint64, map[string]*NodeAllocChanges, error) {
	f, err := w.next()
	if err != nil {
		return 0, nil, err
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
//
// The reports go in binary (FrameContentType; docs/api.md) unless
// Config.NodeWireJSON is set or the server refused binary once (a server
// before it answers 400): then as JSON, from then on.
func (c *Client) UpdateNodesAllocations(ctx context.Context, updates map[string][]*AllocClientUpdate) (*NodesAllocUpdateResponse, error) {
	var out NodesAllocUpdateResponse
	err := c.sendReports(ctx, "/v1/nodes/allocations", updates, &out, func() error {
		out = NodesAllocUpdateResponse{}
		_, err := c.do(ctx, "POST", "/v1/nodes/allocations", nil, &NodesAllocUpdateRequest{Nodes: updates}, &out)
		return err
	})
	return &out, err
}

// What reports are sent as (Client.reportWire).
const (
	reportUnknown = iota
	reportBinary
	reportJSON
)

// sendReports posts reports to path in binary (EncodeNodesReports's body)
// and decodes the answer into out, or calls sendJSON when the client
// speaks JSON: when Config.NodeWireJSON is set, or the server refused
// binary once (a server before it answers 400 or 415; the JSON sent then
// says whether binary was the trouble).
func (c *Client) sendReports(ctx context.Context, path string, updates map[string][]*AllocClientUpdate, out any, sendJSON func() error) error {
	if c.nodeWireJSON || c.reportWire.Load() == reportJSON {
		return sendJSON()
	}
	resp, err := c.send(ctx, "POST", path, nil, EncodeNodesReports(updates), FrameContentType, "")
	if err == nil {
		err = decodeResponse(resp, out)
	}
	var ae *APIError
	if err == nil || c.reportWire.Load() != reportUnknown || !errors.As(err, &ae) ||
		(ae.StatusCode != http.StatusBadRequest && ae.StatusCode != http.StatusUnsupportedMediaType) {
		if err == nil {
			c.reportWire.Store(reportBinary)
		}
		return err
	}
	if err := sendJSON(); err != nil {
		return err
	}
	c.reportWire.Store(reportJSON)
	return nil
}

// EncodeNodesReports returns a batched report's binary body: the
// encoding of the server's report entries (structs.EncodeReportBatch),
// nodes in ID order, times 0 (the server stamps them).
func EncodeNodesReports(updates map[string][]*AllocClientUpdate) []byte {
	req := &structs.AllocClientUpdateBatchRequest{Nodes: make([]structs.AllocClientUpdateRequest, 0, len(updates))}
	for _, id := range slices.Sorted(maps.Keys(updates)) {
		req.Nodes = append(req.Nodes, structs.AllocClientUpdateRequest{NodeID: id, Updates: updates[id]})
	}
	return structs.EncodeReportBatch(req)
}

// DecodeNodesReports decodes EncodeNodesReports's body; a node twice or a
// time other than 0 is refused.
func DecodeNodesReports(body []byte) (*NodesAllocUpdateRequest, error) {
	req, err := structs.DecodeReportBatch(body)
	if err != nil {
		return nil, err
	}
	out := &NodesAllocUpdateRequest{Nodes: make(map[string][]*AllocClientUpdate, len(req.Nodes))}
	for i, r := range req.Nodes {
		if _, dup := out.Nodes[r.NodeID]; dup {
			return nil, fmt.Errorf("decoding report batch: node %d of %d: node %q appears twice", i, len(req.Nodes), r.NodeID)
		}
		if r.Time != 0 {
			return nil, fmt.Errorf("decoding report batch: node %d of %d: time must be 0 (got %d)", i, len(req.Nodes), r.Time)
		}
		out.Nodes[r.NodeID] = r.Updates
	}
	return out, nil
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
