package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// Endpoints that carry many nodes per request, for hosts that run many
// nodes (gantry bench's simulated nodes) or proxies in front of agents.

// maxBatchNodes bounds the nodes of one batched heartbeat or report.
const maxBatchNodes = api.MaxWatchNodes

// nodesHeartbeat renews many nodes' TTLs: PUT /v1/nodes/heartbeat. Each
// node keeps its own TTL timer, as with POST /v1/node/{id}/heartbeat;
// nodes the server does not know are listed in the answer.
func (s *Server) nodesHeartbeat(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.NodesHeartbeatRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if len(req.NodeIDs) == 0 {
		return nil, badRequest("node_ids: at least one node ID is required")
	}
	if len(req.NodeIDs) > maxBatchNodes {
		return nil, badRequest("node_ids: at most %d nodes per request (got %d)", maxBatchNodes, len(req.NodeIDs))
	}
	if !s.Leader() {
		return nil, ErrNotLeader
	}
	snap := s.state.Snapshot()
	index := snap.Index()
	resp := &api.NodesHeartbeatResponse{HeartbeatTTL: structs.Duration(s.cfg.HeartbeatTTL)}
	var back []string
	for _, id := range req.NodeIDs {
		n := snap.NodeByID(id)
		if n == nil {
			resp.Unknown = append(resp.Unknown, id)
			continue
		}
		if n.Status != structs.NodeStatusReady {
			i, _, err := s.raftApply(structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{
				NodeID: id, Status: structs.NodeStatusReady, Time: s.now().UnixNano(),
			})
			if err != nil {
				return nil, err
			}
			index = max(index, i)
			s.logger.Info("node is back", "node", id, "name", n.Name)
			back = append(back, id)
		}
		s.hb.reset(id, s.cfg.HeartbeatTTL)
	}
	if len(back) > 0 {
		s.enqueueBlockedJobs(index, back...)
	}
	resp.Index = index
	return resp, nil
}

// nodesUpdateAllocs applies many nodes' reports: POST /v1/nodes/allocations.
// The rules are those of POST /v1/node/{id}/allocations for each node, and
// the reports join the same group commit.
//
// A body of Content-Type api.FrameContentType is the binary encoding of
// api.EncodeNodesReports; any other is JSON.
func (s *Server) nodesUpdateAllocs(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.NodesAllocUpdateRequest
	if isFrameBody(r) {
		dec, err := decodeReportsFrame(w, r)
		if err != nil {
			return nil, err
		}
		req = *dec
	} else if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	ids, err := validateNodesUpdate(&req)
	if err != nil {
		return nil, err
	}
	snap := s.state.Snapshot()
	resp := &api.NodesAllocUpdateResponse{}
	now := s.now().UnixNano()
	reqs := make([]structs.AllocClientUpdateRequest, 0, len(ids))
	for _, id := range ids {
		if snap.NodeByID(id) == nil {
			resp.Unknown = append(resp.Unknown, id)
			continue
		}
		if len(req.Nodes[id]) > 0 {
			reqs = append(reqs, structs.AllocClientUpdateRequest{NodeID: id, Updates: req.Nodes[id], Time: now})
		}
	}
	if len(reqs) == 0 {
		resp.Index = snap.Index()
		return resp, nil
	}
	index, err := s.updates.submitAll(r.Context(), reqs)
	if err != nil {
		return nil, err
	}
	resp.Index = index
	return resp, nil
}

// validateNodesUpdate checks a batched report and returns its node IDs,
// sorted.
func validateNodesUpdate(req *api.NodesAllocUpdateRequest) ([]string, error) {
	if len(req.Nodes) == 0 {
		return nil, badRequest("nodes: at least one node is required")
	}
	if len(req.Nodes) > maxBatchNodes {
		return nil, badRequest("nodes: at most %d nodes per request (got %d)", maxBatchNodes, len(req.Nodes))
	}
	ids := make([]string, 0, len(req.Nodes))
	for id := range req.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var fields []structs.FieldError
	total := 0
	for _, id := range ids {
		for i, u := range req.Nodes[id] {
			field := fmt.Sprintf("nodes[%q][%d]", id, i)
			switch {
			case u == nil:
				fields = append(fields, structs.FieldError{Field: field, Rule: "must not be null"})
			case u.ID == "":
				fields = append(fields, structs.FieldError{Field: field + ".id", Rule: "is required"})
			case !clientStatuses[u.ClientStatus]:
				fields = append(fields, structs.FieldError{Field: field + ".client_status",
					Rule: fmt.Sprintf("must be pending, running, complete, failed or lost (got %q)", u.ClientStatus)})
			}
		}
		total += len(req.Nodes[id])
	}
	if len(fields) > 0 {
		return nil, &httpError{code: http.StatusBadRequest, msg: "invalid allocation updates", fields: fields}
	}
	if total > maxBatchUpdates {
		return nil, badRequest("nodes: at most %d updates per request (got %d)", maxBatchUpdates, total)
	}
	return ids, nil
}

// isFrameBody reports whether the request's body is in the binary
// encoding (Content-Type api.FrameContentType).
func isFrameBody(r *http.Request) bool {
	typ, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(typ), api.FrameContentType)
}

// readBody reads a request body of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes)}
		}
		return nil, badRequest("reading the request body: %v", err)
	}
	if len(body) == 0 {
		return nil, badRequest("request body is empty")
	}
	return body, nil
}

// decodeReportsFrame reads a binary body of batched reports
// (api.EncodeNodesReports).
func decodeReportsFrame(w http.ResponseWriter, r *http.Request) (*api.NodesAllocUpdateRequest, error) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	dec, err := api.DecodeNodesReports(body)
	if err != nil {
		return nil, badRequest("invalid request body: %v", err)
	}
	return dec, nil
}
