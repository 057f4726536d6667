package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gantry-project/gantry/api"
)

func TestSchedulerStatusSharedState(t *testing.T) {
	st := &api.SchedulerStatus{
		Architecture: "shared-state", QueueDepth: 3, Evaluations: 400, Placements: 2000,
		BusyFraction: 0.5, LatencyP50Ms: 1.5, LatencyP99Ms: 9, DecisionsPerSec: 250,
		PlansSubmitted: 420, Conflicts: 20, ConflictFraction: 0.05, Retries: 18,
		Schedulers: []api.SchedulerPoolStatus{
			{Name: "service", JobTypes: []string{"*"}, Workers: 4, BusyFraction: 0.6, QueueDepth: 2, Evaluations: 300, Placements: 1500, PlansSubmitted: 315, Conflicts: 15, Retries: 14},
			{Name: "batch", JobTypes: []string{"batch"}, Workers: 2, BusyFraction: 0.3, QueueDepth: 1, Evaluations: 100, Placements: 500, PlansSubmitted: 105, Conflicts: 5, Retries: 4},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/scheduler/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	e := newEnv(t, srv.URL, FormatTable)
	if err := e.SchedulerStatus(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := `Architecture      = shared-state
Queue depth       = 3
Evaluations       = 400
Placements        = 2000
Preemptions       = 0
Busy              = 50.0%
Latency p50       = 1.50 ms
Latency p99       = 9.00 ms
Decisions/s       = 250.0
Blocked jobs      = 0
Unblocked         = 0
Plans submitted   = 420
Conflicts         = 20
Conflict fraction = 0.050
Retries           = 18

SCHEDULER   JOB TYPES   WORKERS   BUSY    QUEUE   EVALUATIONS   PLACEMENTS   PLANS   CONFLICTS   RETRIES
service     *           4         60.0%   2       300           1500         315     15          14
batch       batch       2         30.0%   1       100           500          105     5           4
`
	if got := e.out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
