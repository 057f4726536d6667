package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gantry-project/gantry/api"
)

// DeploymentList prints the namespace's deployments, newest first.
func (e *Env) DeploymentList(ctx context.Context) error {
	deps, _, err := e.Client.ListDeployments(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing deployments: %w", e.Humanize(err))
	}
	if ok, err := e.printData(deps); ok {
		return err
	}
	if len(deps) == 0 {
		fmt.Fprintln(e.Out, "No deployments")
		return nil
	}
	t := newTable("ID", "JOB", "VERSION", "STATUS", "HEALTHY", "DESCRIPTION")
	for _, d := range deps {
		t.row(shortID(d.ID), d.JobID, d.JobVersion, d.Status, len(d.Healthy), d.StatusDescription)
	}
	return t.write(e.Out)
}

// DeploymentStatus prints one deployment.
func (e *Env) DeploymentStatus(ctx context.Context, ref string) error {
	d, _, err := e.Client.Deployment(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", ref, e.Humanize(err))
	}
	if ok, err := e.printData(d); ok {
		return err
	}
	s := d.Strategy
	fmt.Fprintf(e.Out, "ID          = %s\nJob         = %s\nVersion     = %d\nStatus      = %s\nDescription = %s\n",
		d.ID, d.JobID, d.JobVersion, d.Status, d.StatusDescription)
	fmt.Fprintf(e.Out, "Strategy    = max_parallel %d, min_healthy_time %s, healthy_deadline %s, progress_deadline %s, canary %d, auto_promote %v, auto_revert %v\n",
		s.MaxParallel, s.MinHealthyTime, s.HealthyDeadline, s.ProgressDeadline, s.Canary, s.AutoPromote, s.AutoRevert)
	fmt.Fprintf(e.Out, "Healthy     = %d\nUnhealthy   = %d\n", len(d.Healthy), len(d.Unhealthy))
	if d.DesiredCanaries > 0 {
		fmt.Fprintf(e.Out, "Canaries    = %d of %d placed, promoted %v\n", len(d.Canaries), d.DesiredCanaries, d.Promoted)
	}
	if d.RevertedTo > 0 {
		fmt.Fprintf(e.Out, "Reverted to = version %d\n", d.RevertedTo)
	}
	return nil
}

// DeploymentAction pauses, resumes, fails or promotes a deployment.
func (e *Env) DeploymentAction(ctx context.Context, ref, action string) error {
	resp, err := e.Client.DeploymentAction(ctx, ref, action)
	if err != nil {
		return fmt.Errorf("deployment %s: %s: %w", ref, action, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	d := resp.Deployment
	fmt.Fprintf(e.Out, "Deployment %s of %s version %d: %s (%s) at index %d\n", shortID(d.ID), d.JobID, d.JobVersion, d.Status, d.StatusDescription, resp.Index)
	return nil
}

// deploymentLine is the progress line of a deployment.
func deploymentLine(d *api.Deployment, count int) string {
	s := fmt.Sprintf("deployment %s: %s, %d/%d healthy", shortID(d.ID), d.Status, len(d.Healthy), count)
	if d.DesiredCanaries > 0 && !d.Promoted {
		s += fmt.Sprintf(", canaries %d/%d", len(d.Canaries), d.DesiredCanaries)
	}
	return s
}

// awaitingPromotion reports whether every canary is healthy and the
// deployment waits for a person to promote it.
func awaitingPromotion(d *api.Deployment) bool {
	if !d.Active() || !d.InCanaryPhase() || d.Strategy.AutoPromote {
		return false
	}
	healthy := 0
	for _, id := range d.Canaries {
		if d.IsHealthy(id) {
			healthy++
		}
	}
	return healthy >= d.DesiredCanaries
}

// followDeployment follows the job's deployment of version with blocking
// queries until it ends (successful: nil; failed or cancelled: an error
// matching ErrNotConverged) or waits for its canaries' promotion (nil,
// with the command to promote).
// errNoNewDeployment: the registration started no deployment (the version
// did not change); `job run` follows the copies instead.
var errNoNewDeployment = errors.New("no new deployment")

func (e *Env) followDeployment(ctx context.Context, name string, version, registered uint64, count int, pw *progressWriter) error {
	var waitIndex uint64
	for {
		d, meta, err := e.Client.JobDeployment(ctx, name, &api.QueryOptions{WaitIndex: waitIndex, WaitTime: followWait})
		var ae *api.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
			return errNoNewDeployment
		}
		if err != nil {
			return err
		}
		if meta.LastIndex <= waitIndex {
			// No blocking on this server: do not spin.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pollPause):
			}
		}
		waitIndex = meta.LastIndex
		if d.JobVersion == version && d.CreateIndex < registered {
			return errNoNewDeployment
		}
		if d.JobVersion != version {
			if d.JobVersion > version {
				return notConvergedf("job %s: version %d was replaced by version %d before its deployment ended", name, version, d.JobVersion)
			}
			continue
		}
		pw.update(deploymentLine(d, count))
		switch {
		case d.Status == api.DeploymentSuccessful:
			return nil
		case d.Status == api.DeploymentFailed || d.Status == api.DeploymentCancelled:
			msg := fmt.Sprintf("deployment %s of job %s version %d %s: %s", shortID(d.ID), name, version, d.Status, d.StatusDescription)
			if d.RevertedTo > 0 {
				msg += fmt.Sprintf("\n`gantry deployment list%s` follows the rollback to version %d", e.nsFlag(), d.RevertedTo)
			}
			return notConvergedf("%s", msg)
		case awaitingPromotion(d):
			pw.finish()
			fmt.Fprintf(pw.w, "Canaries healthy; the deployment waits for promotion:\n  gantry deployment promote%s %s\n", e.nsFlag(), shortID(d.ID))
			return nil
		}
	}
}
