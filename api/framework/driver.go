package framework

import (
	"context"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// Driver makes a subscribed framework's calls. It is valid for one
// subscription: the Driver a Scheduler method gets is the current one.
type Driver struct {
	c      *api.Client
	id     string
	stream string
}

// FrameworkID is the framework's ID; persist it to keep the framework's
// tasks across a restart (Config.ID).
func (d *Driver) FrameworkID() string { return d.id }

func (d *Driver) call(ctx context.Context, c *api.FrameworkCall) (*api.AcceptResponse, error) {
	c.FrameworkID = d.id
	return d.c.CallFramework(ctx, d.stream, c)
}

func filters(refuse time.Duration) *api.Filters {
	s := refuse.Seconds()
	return &api.Filters{RefuseSeconds: &s}
}

// Launch launches tasks on one offer (their AgentID is set to the
// offer's node); what they leave of the offer is filtered for refuse. It
// returns each task's status: TASK_STAGING when placed.
func (d *Driver) Launch(ctx context.Context, offer api.Offer, tasks []api.TaskInfo, refuse time.Duration) ([]api.TaskStatus, error) {
	for i := range tasks {
		tasks[i].AgentID = offer.AgentID
	}
	return d.Accept(ctx, []string{offer.ID}, tasks, refuse)
}

// Accept launches tasks on several offers (each task names its node in
// AgentID); what they leave is filtered for refuse.
func (d *Driver) Accept(ctx context.Context, offerIDs []string, tasks []api.TaskInfo, refuse time.Duration) ([]api.TaskStatus, error) {
	res, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeAccept, Accept: &api.CallAccept{
		OfferIDs:   offerIDs,
		Operations: []api.OfferOperation{{Type: structs.OperationLaunch, Launch: &api.LaunchOperation{TaskInfos: tasks}}},
		Filters:    filters(refuse),
	}})
	if err != nil || res == nil {
		return nil, err
	}
	return res.Tasks, nil
}

// Decline returns offers unused; their resources are not offered to this
// framework again for refuse (unless they grow).
func (d *Driver) Decline(ctx context.Context, offerIDs []string, refuse time.Duration) error {
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeDecline, Decline: &api.CallDecline{OfferIDs: offerIDs, Filters: filters(refuse)}})
	return err
}

// Kill stops a task; its status updates follow.
func (d *Driver) Kill(ctx context.Context, taskID string) error {
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeKill, Kill: &api.CallKill{TaskID: taskID}})
	return err
}

// Reconcile asks for the status of the tasks named (none: of every task
// the cluster knows the framework to hold); the answers come as updates
// with Reason "reconciliation". After a restart, name every task the
// framework may have launched: the cluster answers TASK_UNKNOWN for those
// it never launched.
func (d *Driver) Reconcile(ctx context.Context, taskIDs ...string) error {
	r := &api.CallReconcile{}
	for _, id := range taskIDs {
		r.Tasks = append(r.Tasks, api.ReconcileTask{TaskID: id})
	}
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeReconcile, Reconcile: r})
	return err
}

// Revive asks for offers again, lifting every filter.
func (d *Driver) Revive(ctx context.Context) error {
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeRevive})
	return err
}

// Suppress stops offers until Revive.
func (d *Driver) Suppress(ctx context.Context) error {
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeSuppress})
	return err
}

// Teardown removes the framework and kills its tasks.
func (d *Driver) Teardown(ctx context.Context) error {
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeTeardown})
	return err
}

// Acknowledge confirms a status update (Run does it after Update).
func (d *Driver) Acknowledge(ctx context.Context, st api.TaskStatus) error {
	_, err := d.call(ctx, &api.FrameworkCall{Type: structs.CallTypeAcknowledge,
		Acknowledge: &api.CallAcknowledge{TaskID: st.TaskID, AgentID: st.AgentID, UUID: st.UUID}})
	return err
}
