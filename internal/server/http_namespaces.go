package server

import (
	"net/http"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// namespaceList lists the namespaces the caller has any capability in
// (all of them with operator read), with what each holds.
func (s *Server) namespaceList(w http.ResponseWriter, r *http.Request) (any, error) {
	a := s.aclOf(r)
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		snap.AllocsWatch(ws) // usage follows the allocations
		out := []*api.NamespaceStatus{}
		for _, ns := range snap.Namespaces(ws) {
			if !a.AllowOperator(acl.LevelRead) && a.Namespace(ns.Name) == 0 {
				continue
			}
			out = append(out, &api.NamespaceStatus{Namespace: *ns, Usage: snap.NamespaceUsage(ns.Name),
				Jobs: len(snap.JobsInNamespace(ws, ns.Name))})
		}
		return snap.TableIndex(state.TableNamespaces, state.TableJobs, state.TableAllocs), out, nil
	})
}

func (s *Server) namespaceApply(w http.ResponseWriter, r *http.Request) (any, error) {
	var ns structs.Namespace
	if err := decodeBody(w, r, &ns); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if ns.Name != "" && ns.Name != name {
		return nil, badRequest("name: the body names namespace %q but the path %q", ns.Name, name)
	}
	ns.Name = name
	if err := ns.Validate(); err != nil {
		return nil, err
	}
	if ns.Quota != nil && *ns.Quota == (structs.Quota{}) {
		ns.Quota = nil // no dimension capped: no quota
	}
	ns.CreateIndex, ns.ModifyIndex = 0, 0
	index, _, err := s.raftApply(structs.NamespaceUpsertRequestType, &structs.NamespaceUpsertRequest{Namespaces: []*structs.Namespace{&ns}})
	if err != nil {
		return nil, err
	}
	// A quota raised or removed may let pending jobs place now.
	s.enqueueNamespaceBlocked(name)
	return &api.IndexResponse{Index: index}, nil
}

func (s *Server) namespaceDelete(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if name == structs.DefaultNamespace {
		return nil, badRequest("the default namespace cannot be deleted")
	}
	snap := s.state.Snapshot()
	if snap.Namespace(nil, name) == nil {
		return nil, s.verifiedNotFound("namespace %q not found", name)
	}
	index, _, err := s.raftApply(structs.NamespaceDeleteRequestType, &structs.NamespaceDeleteRequest{Names: []string{name}})
	if err != nil {
		return nil, err
	}
	return &api.IndexResponse{Index: index}, nil
}

// enqueueQuotaBlocked enqueues the namespace's jobs that wait with a
// placement failure: room under its quota was freed (allocations ended,
// a job stopped) or the quota changed. Namespaces without a quota have
// nothing waiting on it, so this reads nothing for them.
func (s *Server) enqueueQuotaBlocked(ns string) {
	if s.state.Snapshot().NamespaceQuota(ns) == nil {
		return
	}
	s.enqueueNamespaceBlocked(ns)
}

// enqueueNamespaceBlocked enqueues the namespace's jobs that wait with a
// placement failure.
func (s *Server) enqueueNamespaceBlocked(ns string) {
	snap := s.state.Snapshot()
	for _, f := range snap.PlacementFailures() {
		if structs.JobNamespace(f.JobID) != ns {
			continue
		}
		if j := snap.JobByID(f.JobID); j != nil {
			s.sched.Enqueue(j.ID, j.Priority)
		}
	}
}
