package api

import (
	"context"
	"net/url"

	"github.com/gantry-project/gantry/internal/structs"
)

// Deployment types are the domain's (internal/structs/deployment.go).
type (
	Deployment               = structs.Deployment
	UpdateStrategy           = structs.UpdateStrategy
	MigrateStrategy          = structs.MigrateStrategy
	DeploymentActionResponse = structs.DeploymentActionResponse
)

// Deployment statuses.
const (
	DeploymentRunning    = structs.DeploymentRunning
	DeploymentPaused     = structs.DeploymentPaused
	DeploymentSuccessful = structs.DeploymentSuccessful
	DeploymentFailed     = structs.DeploymentFailed
	DeploymentCancelled  = structs.DeploymentCancelled
)

// ListDeployments lists the namespace's deployments, newest first (GET
// /v1/deployments).
func (c *Client) ListDeployments(ctx context.Context, q *QueryOptions) ([]*Deployment, *QueryMeta, error) {
	var out []*Deployment
	meta, err := c.do(ctx, "GET", "/v1/deployments", c.nsValues(q), nil, &out)
	return out, meta, err
}

// Deployment reads one deployment by ID or unique prefix (GET
// /v1/deployment/{id}).
func (c *Client) Deployment(ctx context.Context, id string, q *QueryOptions) (*Deployment, *QueryMeta, error) {
	var out Deployment
	meta, err := c.do(ctx, "GET", "/v1/deployment/"+url.PathEscape(id), c.nsValues(q), nil, &out)
	return &out, meta, err
}

// JobDeployment reads a job's newest deployment (GET
// /v1/job/{id}/deployment).
func (c *Client) JobDeployment(ctx context.Context, jobID string, q *QueryOptions) (*Deployment, *QueryMeta, error) {
	var out Deployment
	meta, err := c.do(ctx, "GET", "/v1/job/"+url.PathEscape(jobID)+"/deployment", c.nsValues(q), nil, &out)
	return &out, meta, err
}

// DeploymentAction pauses, resumes, fails or promotes a deployment (POST
// /v1/deployment/{id}/{action}).
func (c *Client) DeploymentAction(ctx context.Context, id, action string) (*DeploymentActionResponse, error) {
	var out DeploymentActionResponse
	_, err := c.do(ctx, "POST", "/v1/deployment/"+url.PathEscape(id)+"/"+url.PathEscape(action), c.nsQuery(""), nil, &out)
	return &out, err
}
