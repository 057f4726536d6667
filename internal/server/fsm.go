package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// fsm applies committed Raft entries to the state store. Raft calls Apply,
// Snapshot and Restore from its single FSM goroutine (Persist runs on
// another, against an immutable snapshot).
//
// Apply is deterministic: it reads only the entry and the store. Times and
// IDs were chosen by the proposer.
type fsm struct {
	state  *state.Store
	logger *slog.Logger
	// onMembers, if set, is called after the servers table may have
	// changed (a server record or a snapshot was applied); it must not
	// block.
	onMembers func()
	// onUnknown, if set, is called for an entry of a type this build does
	// not know (entry_format.go); it must not block.
	onUnknown func(index uint64, t structs.MessageType)
	// events, if set, receives every applied entry while someone
	// subscribes to the event stream (events.go).
	events *stream.Broker
}

// fsmResult is what Apply returns for entries that report something.
type fsmResult struct {
	// terminal lists allocations that became client-terminal.
	terminal []*structs.Allocation
	// dropped lists jobs whose planned placements were not committed
	// because the job changed after the plan was checked.
	dropped []string
}

// encodeProposal encodes an entry this server proposes: in the binary
// types once every server applies them (entry_format.go), in JSON before.
func (s *Server) encodeProposal(t structs.MessageType, req any) ([]byte, error) {
	if s.format.binary.Load() {
		return encodeEntry(t, req)
	}
	return encodeJSONEntry(t, req)
}

// encodeEntry builds a Raft entry: one type byte then the body. Plans and
// agents' reports, the entries that carry allocations by the thousand, are
// written in their binary encodings (structs.EncodePlanBatch,
// structs.EncodeReportBatch) under their own types; everything else, and
// those requests when the caller's type does not match, is JSON.
func encodeEntry(t structs.MessageType, req any) ([]byte, error) {
	switch r := req.(type) {
	case *structs.ApplyPlanBatchRequest:
		if t == structs.ApplyPlanBatchRequestType {
			return encodePlanEntry(r)
		}
	case *structs.ApplyPlanRequest:
		if t == structs.ApplyPlanRequestType {
			// A batch of one applies exactly as the single plan.
			return encodePlanEntry(&structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{r}})
		}
	case *structs.AllocClientUpdateBatchRequest:
		if t == structs.AllocClientUpdateBatchRequestType {
			return append([]byte{byte(structs.AllocClientUpdateBatchBinaryType)}, structs.EncodeReportBatch(r)...), nil
		}
	}
	return encodeJSONEntry(t, req)
}

func encodePlanEntry(req *structs.ApplyPlanBatchRequest) ([]byte, error) {
	body, err := structs.EncodePlanBatch(req)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(structs.ApplyPlanBatchBinaryType)}, body...), nil
}

// encodeJSONEntry builds a Raft entry: one type byte then the JSON body.
func encodeJSONEntry(t structs.MessageType, req any) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", req, err)
	}
	return append([]byte{byte(t)}, body...), nil
}

// Apply implements raft.FSM. It returns nil, an error, or a *fsmResult.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) == 0 {
		return fmt.Errorf("raft entry %d is empty", l.Index)
	}
	t, body := structs.MessageType(l.Data[0]), l.Data[1:]
	publish := f.events != nil && f.events.Want(l.Index)
	var before *state.Snapshot
	var writes *state.AllocWrites
	if publish {
		if needsBefore(t) {
			before = f.state.Snapshot()
		}
		if derivesFromWrites(t) {
			writes = &state.AllocWrites{}
			f.state.RecordAllocWrites(writes)
		}
	}
	resp, req := f.apply(l.Index, t, body)
	if writes != nil {
		f.state.RecordAllocWrites(nil)
	}
	if publish {
		f.publishEntry(l.Index, t, req, before, writes, resp)
	}
	var unknown *unknownEntryError
	if err, ok := resp.(error); ok && err != nil {
		if errors.As(err, &unknown) {
			if f.onUnknown != nil {
				f.onUnknown(l.Index, t)
			} else {
				f.logger.Error("raft entry of a type this build does not know", "index", l.Index, "type", int(t))
			}
		} else {
			f.logger.Warn("raft entry not applied", "index", l.Index, "type", t, "error", err)
		}
	}
	if f.onMembers != nil && (t == structs.ServerMemberUpsertRequestType || t == structs.ServerMemberDeleteRequestType) {
		f.onMembers()
	}
	return resp
}

func decode[T any](body []byte) (*T, error) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", v, err)
	}
	return &v, nil
}

// apply decodes and applies one entry and returns Apply's response and the
// decoded request (nil when not decoded; the event stream derives its
// events from it, so it must not be modified once applied). It has
// a case for every structs.MessageTypes() (fsm_types_test.go checks); any
// other type is refused with an *unknownEntryError.
func (f *fsm) apply(index uint64, t structs.MessageType, body []byte) (resp, decoded any) {
	switch t {
	case structs.NodeRegisterRequestType:
		req, err := decode[structs.NodeRegisterRequest](body)
		if err != nil {
			return err, nil
		}
		if req.Node == nil {
			return fmt.Errorf("node register at %d: no node", index), req
		}
		n := req.Node.Copy()
		n.Status = structs.NodeStatusReady
		n.StatusUpdatedAt = req.Time
		return f.state.UpsertNode(index, n), req
	case structs.NodeUpdateStatusRequestType:
		req, err := decode[structs.NodeUpdateStatusRequest](body)
		if err != nil {
			return err, nil
		}
		return f.state.UpdateNodeStatus(index, req.NodeID, req.Status, req.Time), req
	case structs.NodeUpdateDrainRequestType:
		req, err := decode[structs.NodeUpdateDrainRequest](body)
		if err != nil {
			return err, nil
		}
		return f.state.UpdateNodeDrainDeadline(index, req.NodeID, req.Drain, req.Deadline, req.Time), req
	case structs.JobRegisterRequestType:
		req, err := decode[structs.JobRegisterRequest](body)
		if err != nil {
			return err, nil
		}
		if req.Deployment != nil {
			return f.state.ApplyJobWrites(index, []structs.JobWrite{{Register: req}}), req
		}
		return f.state.UpsertJob(index, req.Job), req
	case structs.JobDeregisterRequestType:
		req, err := decode[structs.JobDeregisterRequest](body)
		if err != nil {
			return err, nil
		}
		if req.Purge {
			return f.state.PurgeJob(index, req.JobID), req
		}
		return f.state.StopJob(index, req.JobID, req.Time), req
	case structs.DeploymentUpsertRequestType:
		req, err := decode[structs.DeploymentUpsertRequest](body)
		if err != nil {
			return err, nil
		}
		return f.state.UpsertDeployments(index, req.Deployments), req
	case structs.JobBatchRequestType:
		req, err := decode[structs.JobBatchRequest](body)
		if err != nil {
			return err, nil
		}
		return f.state.ApplyJobWrites(index, req.Writes), req
	case structs.AllocClientUpdateRequestType:
		req, err := decode[structs.AllocClientUpdateRequest](body)
		if err != nil {
			return err, nil
		}
		terminal, err := f.state.UpdateAllocsFromClient(index, req.NodeID, req.Updates, req.Time)
		if err != nil {
			return err, nil
		}
		return &fsmResult{terminal: terminal}, req
	case structs.AllocClientUpdateBatchRequestType, structs.AllocClientUpdateBatchBinaryType:
		req, err := decodeReportBatch(t, body)
		if err != nil {
			return err, nil
		}
		terminal, err := f.state.UpdateAllocsFromClientBatch(index, req.Nodes)
		if err != nil {
			return err, nil
		}
		return &fsmResult{terminal: terminal}, req
	case structs.ApplyPlanRequestType:
		req, err := decode[structs.ApplyPlanRequest](body)
		if err != nil {
			return err, nil
		}
		return planResult(f.state.ApplyPlans(index, []*structs.ApplyPlanRequest{req})), req
	case structs.ApplyPlanBatchRequestType, structs.ApplyPlanBatchBinaryType:
		req, err := decodePlanBatch(t, body)
		if err != nil {
			return err, nil
		}
		return planResult(f.state.ApplyPlans(index, req.Plans)), req
	case structs.GCRequestType:
		req, err := decode[structs.GCRequest](body)
		if err != nil {
			return err, nil
		}
		res, err := f.state.GarbageCollect(index, req)
		if err != nil {
			return err, nil
		}
		return &res, req
	case structs.ServerMemberUpsertRequestType:
		req, err := decode[structs.ServerMemberUpsertRequest](body)
		if err != nil {
			return err, nil
		}
		return f.state.UpsertServerMember(index, req.Member), req
	case structs.ServerMemberDeleteRequestType:
		req, err := decode[structs.ServerMemberDeleteRequest](body)
		if err != nil {
			return err, nil
		}
		return f.state.DeleteServerMember(index, req.ID), req
	}
	return f.applyACL(index, t, body), nil
}

// applyACL applies the ACL and namespace entries;
// any other type is refused with an *unknownEntryError.
func (f *fsm) applyACL(index uint64, t structs.MessageType, body []byte) any {
	switch t {
	case structs.ACLBootstrapRequestType:
		req, err := decode[structs.ACLBootstrapRequest](body)
		if err != nil {
			return err
		}
		return f.state.ACLBootstrap(index, req.Token, req.ResetIndex)
	case structs.ACLPolicyUpsertRequestType:
		req, err := decode[structs.ACLPolicyUpsertRequest](body)
		if err != nil {
			return err
		}
		return f.state.UpsertACLPolicies(index, req.Policies)
	case structs.ACLPolicyDeleteRequestType:
		req, err := decode[structs.ACLPolicyDeleteRequest](body)
		if err != nil {
			return err
		}
		return f.state.DeleteACLPolicies(index, req.Names)
	case structs.ACLTokenUpsertRequestType:
		req, err := decode[structs.ACLTokenUpsertRequest](body)
		if err != nil {
			return err
		}
		return f.state.UpsertACLTokens(index, req.Tokens)
	case structs.ACLTokenDeleteRequestType:
		req, err := decode[structs.ACLTokenDeleteRequest](body)
		if err != nil {
			return err
		}
		return f.state.DeleteACLTokens(index, req.AccessorIDs)
	case structs.NamespaceUpsertRequestType:
		req, err := decode[structs.NamespaceUpsertRequest](body)
		if err != nil {
			return err
		}
		return f.state.UpsertNamespaces(index, req.Namespaces)
	case structs.NamespaceDeleteRequestType:
		req, err := decode[structs.NamespaceDeleteRequest](body)
		if err != nil {
			return err
		}
		return f.state.DeleteNamespaces(index, req.Names)
	}
	return &unknownEntryError{index: index, t: t}
}

// unknownEntryError is Apply's response to an entry of a type this build
// does not know (a newer build proposed it).
type unknownEntryError struct {
	index uint64
	t     structs.MessageType
}

func (e *unknownEntryError) Error() string {
	return fmt.Sprintf("raft entry %d: unknown message type %d", e.index, e.t)
}

// decodePlanBatch decodes a plan batch entry of either encoding.
func decodePlanBatch(t structs.MessageType, body []byte) (*structs.ApplyPlanBatchRequest, error) {
	if t == structs.ApplyPlanBatchBinaryType {
		return structs.DecodePlanBatch(body)
	}
	return decode[structs.ApplyPlanBatchRequest](body)
}

// decodeReportBatch decodes a report batch entry of either encoding.
func decodeReportBatch(t structs.MessageType, body []byte) (*structs.AllocClientUpdateBatchRequest, error) {
	if t == structs.AllocClientUpdateBatchBinaryType {
		return structs.DecodeReportBatch(body)
	}
	return decode[structs.AllocClientUpdateBatchRequest](body)
}

// planResult is Apply's response to a plan entry.
func planResult(dropped []string, err error) any {
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		return &fsmResult{dropped: dropped}
	}
	return nil
}

// Snapshot implements raft.FSM: an O(1) memdb snapshot, persisted later.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.state.Snapshot()}, nil
}

// Restore implements raft.FSM: replaces the store's content.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.state.Restore(rc); err != nil {
		return fmt.Errorf("restoring state from snapshot: %w", err)
	}
	if f.events != nil {
		idx := f.state.Snapshot().Index()
		f.events.Reset(idx, fmt.Sprintf("the state was replaced by a snapshot at index %d: read it again and subscribe from there", idx))
	}
	if f.onMembers != nil {
		f.onMembers()
	}
	return nil
}

type fsmSnapshot struct{ snap *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
