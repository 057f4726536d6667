package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestFSMAppliesEveryMessageType applies one valid entry of every type in
// structs.MessageTypes, in an order that gives each what it needs, and
// checks that each is applied (the state's index moves to the entry's).
// A type added to structs without a case in fsm.apply, or without an entry
// here, fails.
func TestFSMAppliesEveryMessageType(t *testing.T) {
	job := &structs.Job{Name: "web", Count: 3, Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	job.Canonicalize()
	const node = "9b2c7e3a-0000-4000-8000-000000000001"
	alloc := func(id string, idx int) *structs.Allocation {
		return &structs.Allocation{ID: id, JobID: "web", Name: structs.AllocName("web", idx), Index: idx,
			NodeID: node, NodeName: "one", Resources: job.Resources, Priority: job.Priority,
			DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending, CreateTime: 12, ModifyTime: 12}
	}
	plan := func(id string, idx int) *structs.ApplyPlanBatchRequest {
		return &structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{
			{JobID: "web", Time: 12, Allocs: []*structs.Allocation{alloc(id, idx)}}}}
	}
	report := func(id string) *structs.AllocClientUpdateBatchRequest {
		return &structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{{NodeID: node, Time: 13,
			Updates: []*structs.AllocClientUpdate{{ID: id, ClientStatus: structs.AllocClientRunning}}}}}
	}
	member := &structs.ServerMember{ID: "s1", Name: "s1", RaftAddr: "127.0.0.1:4647", HTTPAddr: "127.0.0.1:4646"}
	json, binary := encodeJSONEntry, encodeEntry
	script := []struct {
		mt  structs.MessageType // the type the entry must carry
		enc func(structs.MessageType, any) ([]byte, error)
		req any
	}{
		{structs.NodeRegisterRequestType, json, &structs.NodeRegisterRequest{Node: &structs.Node{ID: node, Name: "one",
			Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}, Time: 10}},
		{structs.JobRegisterRequestType, json, &structs.JobRegisterRequest{Job: job}},
		{structs.JobBatchRequestType, json, &structs.JobBatchRequest{Writes: []structs.JobWrite{{Register: &structs.JobRegisterRequest{Job: job}}}}},
		{structs.DeploymentUpsertRequestType, json, &structs.DeploymentUpsertRequest{Deployments: []*structs.Deployment{
			{ID: "d1", JobID: "web", Namespace: "default", JobVersion: job.Version, Status: structs.DeploymentSuccessful}}, Time: 11}},
		{structs.ApplyPlanRequestType, json, plan("a0", 0).Plans[0]},
		{structs.ApplyPlanBatchRequestType, json, plan("a1", 1)},
		{structs.ApplyPlanBatchBinaryType, binary, plan("a2", 2)},
		{structs.AllocClientUpdateRequestType, json, &report("a0").Nodes[0]},
		{structs.AllocClientUpdateBatchRequestType, json, report("a1")},
		{structs.AllocClientUpdateBatchBinaryType, binary, report("a2")},
		{structs.NodeUpdateDrainRequestType, json, &structs.NodeUpdateDrainRequest{NodeID: node, Drain: true, Time: 14}},
		{structs.NodeUpdateStatusRequestType, json, &structs.NodeUpdateStatusRequest{NodeID: node, Status: structs.NodeStatusDown, Time: 15}},
		{structs.JobDeregisterRequestType, json, &structs.JobDeregisterRequest{JobID: "web", Time: 16}},
		// The node went down: every copy is lost, and the job stopped.
		{structs.GCRequestType, json, func(f *fsm) any {
			j := f.state.Snapshot().JobByID("web")
			return &structs.GCRequest{Allocs: []structs.GCAllocs{{JobID: "web", ModifyIndex: j.ModifyIndex, IDs: []string{"a0"}}}, Time: 17}
		}},
		{structs.ServerMemberUpsertRequestType, json, &structs.ServerMemberUpsertRequest{Member: member}},
		{structs.ServerMemberDeleteRequestType, json, &structs.ServerMemberDeleteRequest{ID: "s1"}},
		{structs.ACLBootstrapRequestType, json, &structs.ACLBootstrapRequest{Token: &structs.ACLToken{
			AccessorID: "boot", SecretHash: "h0", Type: structs.ACLManagementToken}}},
		{structs.ACLPolicyUpsertRequestType, json, &structs.ACLPolicyUpsertRequest{Policies: []*structs.ACLPolicy{
			{Name: "p", Rules: `node { policy = "read" }`}}}},
		{structs.ACLTokenUpsertRequestType, json, &structs.ACLTokenUpsertRequest{Tokens: []*structs.ACLToken{
			{AccessorID: "t", SecretHash: "h1", Type: structs.ACLClientToken, Policies: []string{"p"}}}}},
		{structs.ACLTokenDeleteRequestType, json, &structs.ACLTokenDeleteRequest{AccessorIDs: []string{"t"}}},
		{structs.ACLPolicyDeleteRequestType, json, &structs.ACLPolicyDeleteRequest{Names: []string{"p"}}},
		{structs.NamespaceUpsertRequestType, json, &structs.NamespaceUpsertRequest{Namespaces: []*structs.Namespace{
			{Name: "team", Quota: &structs.Quota{MemoryMB: 1024}}}}},
		{structs.NamespaceDeleteRequestType, json, &structs.NamespaceDeleteRequest{Names: []string{"team"}}},
	}
	// The binary types are proposed under their JSON request's type.
	proposeAs := map[structs.MessageType]structs.MessageType{
		structs.ApplyPlanBatchBinaryType:         structs.ApplyPlanBatchRequestType,
		structs.AllocClientUpdateBatchBinaryType: structs.AllocClientUpdateBatchRequestType,
	}
	f := newTestFSM(t)
	covered := map[structs.MessageType]bool{}
	for i, step := range script {
		mt := step.mt
		if as, ok := proposeAs[mt]; ok {
			mt = as
		}
		req := step.req
		if build, ok := req.(func(*fsm) any); ok { // a request that depends on the state so far
			req = build(f)
		}
		data, err := step.enc(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := structs.MessageType(data[0]); got != step.mt {
			t.Fatalf("step %d encodes as %s, want %s", i, got, step.mt)
		}
		covered[step.mt] = true
		index := uint64(10 + i)
		if err, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(error); ok {
			t.Fatalf("%s: %v", step.mt, err)
		}
		if got := lastIndex(f); got != index {
			t.Fatalf("%s at index %d was not applied: state index %d", step.mt, index, got)
		}
	}
	for _, mt := range structs.MessageTypes() {
		if !covered[mt] {
			t.Errorf("%s (%d) has no entry in this test: add one (and its case in fsm.apply)", mt, mt)
		}
	}
}

// lastIndex is the highest index that changed any table.
func lastIndex(f *fsm) uint64 {
	return f.state.Snapshot().TableIndex(state.TableNodes, state.TableJobs, state.TableAllocs,
		state.TablePlacementFailures, state.TableServers, state.TableACLPolicies, state.TableACLTokens,
		state.TableNamespaces)
}

// TestFSMRefusesUnknownTypes: every byte that is not a known type is
// refused with an error naming the entry and the type, reported through
// onUnknown, and changes nothing; a known type with a damaged body is an
// ordinary decoding error, never "unknown". Nothing panics.
func TestFSMRefusesUnknownTypes(t *testing.T) {
	f := newTestFSM(t)
	type report struct {
		index uint64
		t     structs.MessageType
	}
	var reports []report
	f.onUnknown = func(index uint64, t structs.MessageType) { reports = append(reports, report{index, t}) }
	unknown := 0
	for b := range 256 {
		mt := structs.MessageType(b)
		index := uint64(1000 + b)
		resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: []byte{byte(b), 0xff}})
		err, ok := resp.(error)
		if !ok {
			t.Fatalf("type %d with a damaged body: response %v, want an error", b, resp)
		}
		var ue *unknownEntryError
		isUnknown := errors.As(err, &ue)
		if isUnknown == mt.Known() {
			t.Fatalf("type %d (%s): unknown %v, known %v: %v", b, mt, isUnknown, mt.Known(), err)
		}
		if !isUnknown {
			continue
		}
		unknown++
		if want := fmt.Sprintf("raft entry %d: unknown message type %d", index, b); !strings.Contains(err.Error(), want) {
			t.Errorf("type %d: error %q, want it to say %q", b, err, want)
		}
		if n := len(reports); n != unknown || reports[n-1] != (report{index, mt}) {
			t.Fatalf("type %d: onUnknown reports %v", b, reports)
		}
	}
	if want := 256 - len(structs.MessageTypes()); unknown != want {
		t.Fatalf("%d types refused as unknown, want %d", unknown, want)
	}
	if got := lastIndex(f); got != 0 {
		t.Fatalf("refused entries changed state to index %d", got)
	}
}
