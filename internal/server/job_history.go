package server

import (
	"fmt"
	"net/http"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
)

// jobVersions answers GET /v1/job/{id}/versions: the kept versions,
// newest first, each with what changed from the one before.
func (s *Server) jobVersions(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		if snap.JobByIDWatch(ws, id) == nil {
			return 0, nil, notFound("job %q not found", id)
		}
		vs := snap.JobVersions(ws, id)
		out := &api.JobVersionsResponse{Versions: vs}
		for i := range vs {
			if i+1 < len(vs) {
				out.Diffs = append(out.Diffs, jobDiff(vs[i+1], vs[i]))
			} else {
				out.Diffs = append(out.Diffs, nil)
			}
		}
		return snap.TableIndex(state.TableJobs, state.TableJobVersions), out, nil
	})
}

// jobRevert answers POST /v1/job/{id}/revert: the kept version is
// registered again, as a new submission (a spec that differs from the
// current one gets a new version number, as Nomad's revert).
func (s *Server) jobRevert(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.JobRevertRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	if err := s.checkUserJobWrite(id); err != nil {
		return nil, err
	}
	snap := s.state.Snapshot()
	cur := snap.JobByID(id)
	if cur == nil {
		return nil, s.verifiedNotFound("job %q not found", id)
	}
	if p := req.EnforcePriorVersion; p != nil && *p != cur.Version {
		return nil, &httpError{code: http.StatusConflict, msg: fmt.Sprintf("job %q is at version %d, not %d", id, cur.Version, *p)}
	}
	if req.Version == cur.Version {
		return nil, badRequest("job %q is at version %d already", id, cur.Version)
	}
	old := snap.JobVersion(id, req.Version)
	if old == nil {
		kept := []uint64{}
		for _, v := range snap.JobVersions(nil, id) {
			kept = append(kept, v.Version)
		}
		return nil, notFound("job %q: version %d is not kept (kept: %v)", id, req.Version, kept)
	}
	job := old.Copy()
	if err := s.checkJobForScheduler(job); err != nil {
		return nil, err
	}
	return s.registerJob(job)
}
