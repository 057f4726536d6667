package server

import (
	"fmt"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// Deployment actions (POST /v1/deployment/{id}/{action}).
const (
	deployPause   = "pause"
	deployResume  = "resume"
	deployFail    = "fail"
	deployPromote = "promote"
)

// deploymentInScope checks that a deployment found by ID belongs to the
// request's namespace (any the caller holds want in, for "*").
func (s *Server) deploymentInScope(r *http.Request, d *structs.Deployment, want acl.Capability) error {
	ns, err := requestNamespace(r)
	if err != nil {
		return err
	}
	if ns == structs.AllNamespaces {
		if !s.aclOf(r).AllowNamespace(d.Namespace, want) {
			return forbidden("permission denied: deployment %s is in namespace %s, where the token lacks %s", d.ID, d.Namespace, want)
		}
		return nil
	}
	if d.Namespace != ns {
		return notFound("deployment %q not found in namespace %s (give its namespace with -n/?namespace=)", d.ID, ns)
	}
	return nil
}

// deploymentList answers GET /v1/deployments: the namespace's deployments
// (every namespace the token reads, for "*"), newest first.
func (s *Server) deploymentList(w http.ResponseWriter, r *http.Request) (any, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return nil, err
	}
	a := s.aclOf(r)
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := []*structs.Deployment{}
		for _, d := range snap.Deployments(ws) {
			if ns == structs.AllNamespaces && a.AllowNamespace(d.Namespace, acl.CapRead) || d.Namespace == ns {
				out = append(out, d)
			}
		}
		return snap.TableIndex(state.TableDeployments), out, nil
	})
}

// deploymentGet answers GET /v1/deployment/{id} (an ID or a unique prefix).
func (s *Server) deploymentGet(w http.ResponseWriter, r *http.Request) (any, error) {
	ref := r.PathValue("id")
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		d, err := snap.DeploymentByPrefix(ws, ref)
		if err != nil {
			return 0, nil, badRequest("%v", err)
		}
		if d == nil {
			return 0, nil, notFound("deployment %q not found", ref)
		}
		if err := s.deploymentInScope(r, d, acl.CapRead); err != nil {
			return 0, nil, err
		}
		return snap.TableIndex(state.TableDeployments), d, nil
	})
}

// jobDeployment answers GET /v1/job/{id}/deployment: the job's newest
// deployment (404 when it has none). `gantry job run` follows it.
func (s *Server) jobDeployment(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		deps := snap.DeploymentsByJob(ws, id)
		if len(deps) == 0 {
			return 0, nil, notFound("job %q has no deployment", id)
		}
		return snap.TableIndex(state.TableDeployments), deps[0], nil
	})
}

// deploymentAction answers POST /v1/deployment/{id}/{pause,resume,fail,promote}.
func (s *Server) deploymentAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		s.deployWatch.mu.Lock()
		defer s.deployWatch.mu.Unlock()
		snap := s.state.Snapshot()
		d, err := snap.DeploymentByPrefix(nil, r.PathValue("id"))
		if err != nil {
			return nil, badRequest("%v", err)
		}
		if d == nil {
			return nil, s.verifiedNotFound("deployment %q not found", r.PathValue("id"))
		}
		if err := s.deploymentInScope(r, d, acl.CapSubmit); err != nil {
			return nil, err
		}
		now := s.now()
		c, err := applyDeploymentAction(d, action, now)
		if err != nil {
			return nil, err
		}
		var revertTo *structs.Job
		if action == deployFail && c.Strategy.AutoRevert {
			if revertTo = revertTarget(snap, c, snap.JobByID(c.JobID)); revertTo != nil {
				c.RevertedTo = revertTo.Version
				c.StatusDescription += fmt.Sprintf("; rolling back to version %d (auto_revert)", revertTo.Version)
			}
		}
		index, _, err := s.raftApply(structs.DeploymentUpsertRequestType, &structs.DeploymentUpsertRequest{
			Deployments: []*structs.Deployment{c}, Time: now.UnixNano()})
		if err != nil {
			return nil, err
		}
		s.enqueueJob(c.JobID)
		if revertTo != nil {
			s.autoRevert(c)
		}
		return &structs.DeploymentActionResponse{Deployment: c, Index: index}, nil
	}
}

// applyDeploymentAction returns the deployment as the action leaves it, or
// why the action does not apply (409).
func applyDeploymentAction(d *structs.Deployment, action string, now time.Time) (*structs.Deployment, error) {
	conflict := func(format string, args ...any) error {
		return &httpError{code: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
	}
	if !d.Active() {
		return nil, conflict("deployment %s is %s: only a running or paused deployment can be changed", shortID(d.ID), d.Status)
	}
	c := d.Copy()
	c.ModifyTime = now.UnixNano()
	moveDeadline := func() {
		if pd := c.Strategy.ProgressDeadline; pd > 0 {
			c.RequireProgressBy = now.Add(pd.D()).UnixNano()
		}
	}
	switch action {
	case deployPause:
		if d.Status == structs.DeploymentPaused {
			return nil, conflict("deployment %s is paused already", shortID(d.ID))
		}
		c.Status, c.StatusDescription = structs.DeploymentPaused, "paused by a user"
	case deployResume:
		if d.Status != structs.DeploymentPaused {
			return nil, conflict("deployment %s is not paused", shortID(d.ID))
		}
		c.Status, c.StatusDescription = structs.DeploymentRunning, "resumed by a user"
		moveDeadline()
	case deployFail:
		c.Status, c.StatusDescription = structs.DeploymentFailed, "failed by a user"
	case deployPromote:
		if !d.InCanaryPhase() {
			return nil, conflict("deployment %s has no canaries waiting for promotion", shortID(d.ID))
		}
		healthy := 0
		for _, id := range d.Canaries {
			if d.IsHealthy(id) {
				healthy++
			}
		}
		if healthy < d.DesiredCanaries {
			return nil, conflict("deployment %s: %d of %d canaries healthy; promote once all are", shortID(d.ID), healthy, d.DesiredCanaries)
		}
		c.Promoted = true
		c.StatusDescription = "canaries promoted by a user; rolling the rest"
		moveDeadline()
	default:
		return nil, notFound("unknown deployment action %q", action)
	}
	return c, nil
}
