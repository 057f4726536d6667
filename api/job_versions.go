package api

import (
	"context"
	"net/url"

	"github.com/gantry-project/gantry/internal/structs"
)

// Wire types of job plans, versions and dispatches.
type (
	PeriodicConfig      = structs.PeriodicConfig
	ParameterizedConfig = structs.ParameterizedConfig
	DispatchRequest     = structs.DispatchRequest
	DispatchResponse    = structs.DispatchResponse
)

// JobPlanRequest is the body of POST /v1/job/{id}/plan.
type JobPlanRequest struct {
	Job *Job `json:"job"`
}

// Update kinds a plan reports.
const (
	PlanUpdateCreate      = "create"      // the job does not exist yet
	PlanUpdateDestructive = "destructive" // a new version: copies are replaced
	PlanUpdateInPlace     = "in-place"    // same version: copies are kept
	PlanUpdateNone        = "none"        // nothing changes
)

// JobFieldDiff is one changed field of a job ("" Old: added, "" New:
// removed), values as JSON.
type JobFieldDiff struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
}

// PlannedPlacement is one copy a plan would place.
type PlannedPlacement struct {
	Name     string `json:"name"`
	Node     string `json:"node"`
	NodeName string `json:"node_name,omitempty"`
	// Replaces is the allocation it replaces, if any.
	Replaces string `json:"replaces,omitempty"`
}

// JobPlanResponse answers a plan: what registering the job would change
// and what the scheduler would do now, computed on the leader without
// committing anything.
type JobPlanResponse struct {
	JobID string `json:"job_id"`
	// JobModifyIndex is the job's modify index now (0: no such job): pass
	// it to a registration with EnforceIndex (`job run --check-index`).
	JobModifyIndex uint64 `json:"job_modify_index"`
	// Update is PlanUpdateCreate, ...Destructive, ...InPlace or ...None.
	Update string `json:"update"`
	// Version is the version the registration would give the job.
	Version uint64         `json:"version"`
	Diff    []JobFieldDiff `json:"diff,omitempty"`
	// Place counts new copies, Replace copies placed instead of stopped
	// ones, Stop the stops without a replacement by reason, InPlace live
	// copies kept while the job changes in place, Ignore those unchanged.
	Place   int            `json:"place"`
	Replace int            `json:"replace"`
	Stop    map[string]int `json:"stop,omitempty"`
	InPlace int            `json:"in_place"`
	Ignore  int            `json:"ignore"`
	// Unplaced counts copies that would not fit; Failure says why.
	Unplaced   int                `json:"unplaced"`
	Failure    *PlacementFailure  `json:"failure,omitempty"`
	Placements []PlannedPlacement `json:"placements,omitempty"`
	// Preemptions counts allocations of other jobs the plan would evict.
	Preemptions int `json:"preemptions,omitempty"`
	// NextLaunch, for a periodic job, is the next launch after now (unix
	// nanoseconds).
	NextLaunch int64 `json:"next_launch,omitempty"`
}

// JobVersionsResponse is GET /v1/job/{id}/versions: the kept versions,
// newest first.
type JobVersionsResponse struct {
	Versions []*Job `json:"versions"`
	// Diffs[i] is what changed from Versions[i+1] to Versions[i].
	Diffs [][]JobFieldDiff `json:"diffs,omitempty"`
}

// JobRevertRequest is the body of POST /v1/job/{id}/revert.
type JobRevertRequest struct {
	Version uint64 `json:"version"`
	// EnforcePriorVersion, when set, refuses the revert (409) unless the
	// job's current version is this one.
	EnforcePriorVersion *uint64 `json:"enforce_prior_version,omitempty"`
}

// RegisterJobIndex registers a job only if its modify index is index (0:
// only if it does not exist), as Nomad's `job run -check-index`.
func (c *Client) RegisterJobIndex(ctx context.Context, job *Job, index uint64) (*JobRegisterResponse, error) {
	var out JobRegisterResponse
	_, err := c.do(ctx, "PUT", "/v1/jobs", c.nsQuery(job.Namespace),
		&JobRegisterRequest{Job: job, EnforceIndex: true, JobModifyIndex: index}, &out)
	return &out, err
}

// PlanJob asks what registering job would do (POST /v1/job/{id}/plan).
func (c *Client) PlanJob(ctx context.Context, job *Job) (*JobPlanResponse, error) {
	var out JobPlanResponse
	_, err := c.do(ctx, "POST", "/v1/job/"+url.PathEscape(job.Name)+"/plan", c.nsQuery(job.Namespace), &JobPlanRequest{Job: job}, &out)
	return &out, err
}

// JobVersions lists a job's kept versions (GET /v1/job/{id}/versions).
func (c *Client) JobVersions(ctx context.Context, id string) (*JobVersionsResponse, error) {
	var out JobVersionsResponse
	_, err := c.do(ctx, "GET", "/v1/job/"+url.PathEscape(id)+"/versions", c.nsQuery(""), nil, &out)
	return &out, err
}

// RevertJob registers a kept version again (POST /v1/job/{id}/revert).
func (c *Client) RevertJob(ctx context.Context, id string, version uint64, priorVersion *uint64) (*JobRegisterResponse, error) {
	var out JobRegisterResponse
	_, err := c.do(ctx, "POST", "/v1/job/"+url.PathEscape(id)+"/revert", c.nsQuery(""),
		&JobRevertRequest{Version: version, EnforcePriorVersion: priorVersion}, &out)
	return &out, err
}

// DispatchJob starts a child of a parameterized job (POST
// /v1/job/{id}/dispatch).
func (c *Client) DispatchJob(ctx context.Context, id string, payload []byte, meta map[string]string) (*DispatchResponse, error) {
	var out DispatchResponse
	_, err := c.do(ctx, "POST", "/v1/job/"+url.PathEscape(id)+"/dispatch", c.nsQuery(""),
		&DispatchRequest{Payload: payload, Meta: meta}, &out)
	return &out, err
}
