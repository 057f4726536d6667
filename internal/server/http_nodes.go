package server

import (
	"time"

	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// maxIneligibleLen bounds the reason a node gives for refusing placements
// (kept in the state and shown by the CLI).
const maxIneligibleLen = 256

// validateNode checks what an agent registers.
func validateNode(n *structs.Node) error {
	e := &structs.ValidationError{}
	add := func(field, format string, args ...any) {
		e.Errors = append(e.Errors, structs.FieldError{Field: field, Rule: fmt.Sprintf(format, args...)})
	}
	if len(n.ID) > 128 {
		add("id", "must be at most 128 characters")
	}
	if n.Name == "" {
		add("name", "is required")
	}
	if n.Capacity.CPU <= 0 {
		add("capacity.cpu", "must be > 0 millicores (got %d)", n.Capacity.CPU)
	}
	if n.Capacity.MemoryMB <= 0 {
		add("capacity.memory_mb", "must be > 0 MiB (got %d)", n.Capacity.MemoryMB)
	}
	if n.HTTPAddr != "" {
		if err := checkHTTPAddr(n.HTTPAddr); err != nil {
			add("http_addr", "%v (got %q)", err, n.HTTPAddr)
		}
	}
	if len(n.Ineligible) > maxIneligibleLen {
		add("ineligible", "the reason must be at most %d bytes (got %d)", maxIneligibleLen, len(n.Ineligible))
	}
	if len(e.Errors) > 0 {
		parts := make([]string, len(e.Errors))
		for i, f := range e.Errors {
			parts[i] = f.Error()
		}
		return &httpError{code: http.StatusBadRequest, msg: "invalid node: " + strings.Join(parts, "; "), fields: e.Errors}
	}
	return nil
}

// checkHTTPAddr checks an agent's API address: host:port and nothing else
// (no scheme, path or user), a port from 1 to 65535, a host that is an IP
// address other than 0.0.0.0/:: or a DNS name. The server dials it to
// proxy task logs.
func checkHTTPAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, without scheme or path")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("port must be a number from 1 to 65535 (got %q)", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() {
			return errors.New("must name an address the servers can reach, not an unspecified one")
		}
		return nil
	}
	if !isDNSName(host) {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	return nil
}

// isDNSName reports whether host is a DNS name: dot-separated labels of
// 1 to 63 letters, digits, '-' or '_', not starting or ending with '-'.
func isDNSName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

func (s *Server) nodeRegister(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.NodeRegisterRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Node == nil {
		return nil, &httpError{code: http.StatusBadRequest, msg: "invalid node: node is required",
			fields: []structs.FieldError{{Field: "node", Rule: "is required"}}}
	}
	n := req.Node.Copy()
	// Agents persist their ID, so a restarted agent is the same node; one
	// that sends none gets a fresh ID to keep.
	if n.ID == "" {
		n.ID = structs.NewUUID()
	}
	if n.Name == "" {
		n.Name = n.ID
	}
	if err := validateNode(n); err != nil {
		return nil, err
	}
	now := s.now().UnixNano()
	n.Status = structs.NodeStatusReady
	n.StatusUpdatedAt = now
	n.CreateIndex, n.ModifyIndex = 0, 0
	index, _, err := s.raftApply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: n, Time: now})
	if err != nil {
		return nil, err
	}
	s.hb.reset(n.ID, s.cfg.HeartbeatTTL)
	s.enqueueBlockedJobs(index, n.ID)
	return &api.NodeRegisterResponse{NodeID: n.ID, HeartbeatTTL: structs.Duration(s.cfg.HeartbeatTTL), Index: index}, nil
}

func (s *Server) nodeHeartbeat(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if !s.Leader() {
		return nil, ErrNotLeader
	}
	snap := s.state.Snapshot()
	n := snap.NodeByID(id)
	if n == nil {
		return nil, notFound("node %q is not registered; register it again", id)
	}
	index := snap.Index()
	if n.Status != structs.NodeStatusReady {
		// A node that was marked down is back: ready again.
		var err error
		index, _, err = s.raftApply(structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{
			NodeID: id, Status: structs.NodeStatusReady, Time: s.now().UnixNano(),
		})
		if err != nil {
			return nil, err
		}
		s.logger.Info("node is back", "node", id, "name", n.Name)
		s.enqueueBlockedJobs(index, id)
	}
	s.hb.reset(id, s.cfg.HeartbeatTTL)
	return &api.HeartbeatResponse{HeartbeatTTL: structs.Duration(s.cfg.HeartbeatTTL), Index: index}, nil
}

func (s *Server) nodeList(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		nodes := snap.NodesWatch(ws)
		if nodes == nil {
			nodes = []*structs.Node{}
		}
		return snap.TableIndex(state.TableNodes), nodes, nil
	})
}

func (s *Server) nodeGet(w http.ResponseWriter, r *http.Request) (any, error) {
	ref := r.PathValue("id")
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		n, err := snap.NodeByPrefix(ws, ref)
		if err != nil {
			return 0, nil, err
		}
		return snap.TableIndex(state.TableNodes), n, nil
	})
}

// defaultDrainDeadline is Nomad's: copies moving in waves (jobs with a
// migrate or update block) that have not moved after an hour are stopped.
const defaultDrainDeadline = time.Hour

func (s *Server) nodeDrain(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.NodeDrainRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	n, err := s.state.Snapshot().NodeByPrefix(nil, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	now := s.now()
	var deadline int64
	switch {
	case req.Deadline < 0:
		return nil, badRequest("deadline: must be >= 0 (got %s)", req.Deadline)
	case req.Force && (req.NoDeadline || req.Deadline > 0):
		return nil, badRequest("force: stops every copy at once; give no deadline with it")
	case req.NoDeadline && req.Deadline > 0:
		return nil, badRequest("no_deadline: give either deadline or no_deadline")
	case req.Force:
		deadline = now.UnixNano()
	case req.NoDeadline:
	case req.Deadline > 0:
		deadline = now.Add(req.Deadline.D()).UnixNano()
	default:
		deadline = now.Add(defaultDrainDeadline).UnixNano()
	}
	index, _, err := s.raftApply(structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{
		NodeID: n.ID, Drain: req.Enable, Time: now.UnixNano(), Deadline: deadline,
	})
	if err != nil {
		return nil, err
	}
	if req.Enable {
		s.enqueueNodeJobs(n.ID)
	} else {
		s.enqueueBlockedJobs(index, n.ID)
	}
	return &api.IndexResponse{Index: index}, nil
}

var clientStatuses = map[string]bool{
	structs.AllocClientPending: true, structs.AllocClientRunning: true, structs.AllocClientComplete: true,
	structs.AllocClientFailed: true, structs.AllocClientLost: true,
}

func (s *Server) nodeUpdateAllocs(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req api.AllocUpdateRequest
	if isFrameBody(r) {
		// Binary: the batched reports' encoding, of this node alone.
		dec, err := decodeReportsFrame(w, r)
		if err != nil {
			return nil, err
		}
		for node, ups := range dec.Nodes {
			if node != id {
				return nil, badRequest("invalid request body: reports of node %q sent for node %q", node, id)
			}
			req.Updates = ups
		}
	} else if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	snap := s.state.Snapshot()
	if snap.NodeByID(id) == nil {
		return nil, notFound("node %q is not registered; register it again", id)
	}
	var fields []structs.FieldError
	for i, u := range req.Updates {
		switch {
		case u == nil:
			fields = append(fields, structs.FieldError{Field: fmt.Sprintf("updates[%d]", i), Rule: "must not be null"})
		case u.ID == "":
			fields = append(fields, structs.FieldError{Field: fmt.Sprintf("updates[%d].id", i), Rule: "is required"})
		case !clientStatuses[u.ClientStatus]:
			fields = append(fields, structs.FieldError{Field: fmt.Sprintf("updates[%d].client_status", i),
				Rule: fmt.Sprintf("must be pending, running, complete, failed or lost (got %q)", u.ClientStatus)})
		}
	}
	if len(fields) > 0 {
		return nil, &httpError{code: http.StatusBadRequest, msg: "invalid allocation updates", fields: fields}
	}
	if len(req.Updates) == 0 {
		return &api.IndexResponse{Index: snap.TableIndex(state.TableAllocs)}, nil
	}
	index, err := s.updates.submit(r.Context(), structs.AllocClientUpdateRequest{
		NodeID: id, Updates: req.Updates, Time: s.now().UnixNano(),
	})
	if err != nil {
		return nil, err
	}
	return &api.IndexResponse{Index: index}, nil
}
