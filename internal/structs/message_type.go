package structs

import "strconv"

// MessageType is the first byte of every Raft log entry; the body after it
// is the JSON encoding of the matching request (requests*.go), or for the
// binary types their compact encoding (codec_plan.go, codec_report.go). The
// FSM (internal/server/fsm.go) switches on it.
//
// This block is the one list of entry types, and it is append-only. The
// values are written in every Raft log and snapshot on disk and in every
// server of a cluster, so a value is never renumbered and never reused, even
// after its type stops being proposed: a server replaying an old log must
// still read it as what it was. A new type takes the next value after the
// highest one below, gets a name in messageTypeNames (the test fails
// otherwise) and a case in the FSM (a test there fails otherwise); a build
// that meets a type it does not know refuses it (fsm.go, entry_format.go).
//
// The gaps are historical: types added by concurrent work were numbered
// apart (64, 72, 80, 112, 120) so that none could collide.
type MessageType uint8

const (
	NodeRegisterRequestType       MessageType = 1
	NodeUpdateStatusRequestType   MessageType = 2
	NodeUpdateDrainRequestType    MessageType = 3
	JobRegisterRequestType        MessageType = 4
	JobDeregisterRequestType      MessageType = 5
	AllocClientUpdateRequestType  MessageType = 6
	ApplyPlanRequestType          MessageType = 7
	ServerMemberUpsertRequestType MessageType = 8
	ServerMemberDeleteRequestType MessageType = 9
	// AllocClientUpdateBatchRequestType carries many nodes' reports in one
	// entry (the server coalesces concurrent reports), in JSON; it still
	// applies from older logs (see AllocClientUpdateBatchBinaryType).
	AllocClientUpdateBatchRequestType MessageType = 64
	// JobBatchRequestType carries several job writes (registrations,
	// stops, purges) in one entry: the server group-commits concurrent job
	// writes.
	JobBatchRequestType MessageType = 72
	// ApplyPlanBatchRequestType commits several checked plans in one
	// entry, in JSON; it still applies from older logs (see
	// ApplyPlanBatchBinaryType).
	ApplyPlanBatchRequestType MessageType = 80
	// ApplyPlanBatchBinaryType carries an ApplyPlanBatchRequest in the
	// binary encoding of EncodePlanBatch: the leader proposes plans as this
	// type once every server applies it (RaftProtocolBinary), and
	// ApplyPlanRequestType/ApplyPlanBatchRequestType (JSON) before.
	ApplyPlanBatchBinaryType MessageType = 112
	// AllocClientUpdateBatchBinaryType carries an
	// AllocClientUpdateBatchRequest in the binary encoding of
	// EncodeReportBatch: the server proposes agents' reports as this type
	// once every server applies it, and AllocClientUpdateBatchRequestType
	// (JSON) before.
	AllocClientUpdateBatchBinaryType MessageType = 113
	// GCRequestType deletes terminal allocations and dead jobs the leader
	// chose for garbage collection (GCRequest, JSON). It is proposed only
	// once every server applies it (RaftProtocolGC).
	GCRequestType MessageType = 114
	// 115-119 were never assigned (the ACL types were numbered apart
	// from work written at the same time); they stay free.

	// ACLBootstrapRequestType stores the first management token
	// (ACLBootstrapRequest); the FSM refuses a second unless reset.
	ACLBootstrapRequestType MessageType = 120
	// ACLPolicyUpsertRequestType creates or replaces ACL policies.
	ACLPolicyUpsertRequestType MessageType = 121
	// ACLPolicyDeleteRequestType deletes ACL policies.
	ACLPolicyDeleteRequestType MessageType = 122
	// ACLTokenUpsertRequestType creates or replaces ACL tokens (secrets
	// hashed).
	ACLTokenUpsertRequestType MessageType = 123
	// ACLTokenDeleteRequestType deletes ACL tokens.
	ACLTokenDeleteRequestType MessageType = 124
	// NamespaceUpsertRequestType creates or replaces namespaces (and
	// their quotas).
	NamespaceUpsertRequestType MessageType = 125
	// NamespaceDeleteRequestType deletes empty namespaces.
	NamespaceDeleteRequestType MessageType = 126
	// DeploymentUpsertRequestType stores deployments
	// (DeploymentUpsertRequest): the watcher's health marks and status
	// changes, pause, resume, promote and fail.
	DeploymentUpsertRequestType MessageType = 127
	// Next: 128.
)

// messageTypeNames names every known type (metric labels, logs). An array
// keyed by the constants: two types with one value do not compile.
var messageTypeNames = [...]string{
	NodeRegisterRequestType:           "node_register",
	NodeUpdateStatusRequestType:       "node_status",
	NodeUpdateDrainRequestType:        "node_drain",
	JobRegisterRequestType:            "job_register",
	JobDeregisterRequestType:          "job_deregister",
	AllocClientUpdateRequestType:      "alloc_client_update",
	ApplyPlanRequestType:              "apply_plan",
	ServerMemberUpsertRequestType:     "server_upsert",
	ServerMemberDeleteRequestType:     "server_delete",
	AllocClientUpdateBatchRequestType: "alloc_client_update_batch",
	JobBatchRequestType:               "job_batch",
	ApplyPlanBatchRequestType:         "apply_plan_batch",
	ApplyPlanBatchBinaryType:          "apply_plan_batch_binary",
	AllocClientUpdateBatchBinaryType:  "alloc_client_update_batch_binary",
	GCRequestType:                     "gc",
	ACLBootstrapRequestType:           "acl_bootstrap",
	ACLPolicyUpsertRequestType:        "acl_policy_upsert",
	ACLPolicyDeleteRequestType:        "acl_policy_delete",
	ACLTokenUpsertRequestType:         "acl_token_upsert",
	ACLTokenDeleteRequestType:         "acl_token_delete",
	NamespaceUpsertRequestType:        "namespace_upsert",
	NamespaceDeleteRequestType:        "namespace_delete",
	DeploymentUpsertRequestType:       "deployment_upsert",
}

// Known reports whether t is one of the types above.
func (t MessageType) Known() bool {
	return int(t) < len(messageTypeNames) && messageTypeNames[t] != ""
}

// String returns the type's name, or "type_N" for a type this build does
// not know. Known types cost no allocation (it labels a metric per entry).
func (t MessageType) String() string {
	if t.Known() {
		return messageTypeNames[t]
	}
	return "type_" + strconv.Itoa(int(t))
}

// MessageTypes returns every known type in ascending order.
func MessageTypes() []MessageType {
	var out []MessageType
	for i, name := range messageTypeNames {
		if name != "" {
			out = append(out, MessageType(i))
		}
	}
	return out
}
