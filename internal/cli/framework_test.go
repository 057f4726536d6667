package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gantry-project/gantry/api"
)

func serveJSON(t *testing.T, routes map[string]any) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := routes[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

var testFrameworks = []api.FrameworkStatus{
	{ID: "service", Name: "service", Role: "*", BuiltIn: true, Connected: true, Suppressed: true, Weight: 1, DominantShare: 0.25,
		Allocated: api.Resources{CPU: 2000, MemoryMB: 2048}, OffersSent: 10, Accepted: 4, Declined: 6},
	{ID: "batch", Name: "batch", Role: "*", BuiltIn: true, Connected: true, Weight: 1, DominantShare: 0.5, OffersHeld: 2,
		Allocated: api.Resources{CPU: 4000, MemoryMB: 1024}, OffersSent: 20, Accepted: 10, Declined: 8, Rescinded: 1, Expired: 1, JobsWaiting: 3},
	{ID: "0a1b2c3d-aaaa-bbbb-cccc-000000000001", Name: "queue", Role: "ml", Connected: false, DisconnectedSec: 12, FailoverTimeoutSec: 60,
		Weight: 2, DominantShare: 0.1, Allocated: api.Resources{CPU: 500, MemoryMB: 256}, OffersSent: 3, Accepted: 1, Tasks: 2, Launched: 5},
}

func TestSchedulerStatusTwoLevel(t *testing.T) {
	st := &api.SchedulerStatus{Architecture: "two-level", Evaluations: 40, Placements: 200, DecisionsPerSec: 4,
		OffersOutstanding: 2, OfferHoldP50Ms: 1.5, OfferHoldP99Ms: 30, OffersSent: 33, Declines: 14, Rescinds: 1, OffersExpired: 1,
		JobsWaiting: 3, AllocationRounds: 90, AllocationRoundP99Ms: 0.4, Frameworks: testFrameworks}
	e := newEnv(t, serveJSON(t, map[string]any{"/v1/scheduler/status": st}).URL, FormatTable)
	if err := e.SchedulerStatus(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := `Architecture       = two-level
Queue depth        = 0
Evaluations        = 40
Placements         = 200
Preemptions        = 0
Busy               = 0.0%
Latency p50        = 0.00 ms
Latency p99        = 0.00 ms
Decisions/s        = 4.0
Offers outstanding = 2
Offer hold p50     = 1.50 ms
Offer hold p99     = 30.00 ms
Offers sent        = 33
Declines           = 14
Rescinds           = 1
Offers expired     = 1
Jobs waiting       = 3
Allocation rounds  = 90
Round p99          = 0.40 ms

ID         NAME      ROLE   STATE        SHARE   OFFERS   ALLOCATED             SENT   ACCEPTED   DECLINED   RESCINDED   TASKS   WAITING
built-in   service   *      suppressed   0.250   0        2000m CPU, 2048 MiB   10     4          6          0           0       0
built-in   batch     *      active       0.500   2        4000m CPU, 1024 MiB   20     10         8          2           0       3
0a1b2c3d   queue     ml     away 12s     0.100   0        500m CPU, 256 MiB     3      1          0          0           2       0
`
	if got := e.out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestFrameworkStatus(t *testing.T) {
	d := &api.FrameworkDetail{Framework: testFrameworks[2], Tasks: []api.TaskStatus{
		{TaskID: "t1", State: "TASK_RUNNING", AgentID: "n1", AllocID: "aaaaaaaa-1111"},
		{TaskID: "t2", State: "TASK_STAGING"},
	}}
	e := newEnv(t, serveJSON(t, map[string]any{"/v1/framework/queue": d}).URL, FormatTable)
	if err := e.FrameworkStatus(context.Background(), "queue"); err != nil {
		t.Fatal(err)
	}
	want := `ID               = 0a1b2c3d-aaaa-bbbb-cccc-000000000001
Name             = queue
Role             = ml (weight 2)
Built in         = false
State            = away 12s
Failover timeout = 1m0s
Dominant share   = 0.100
Allocated        = 500m CPU, 256 MiB
Offers held      = 0 (0m CPU, 0 MiB)
Offers           = 3 sent, 1 accepted, 0 declined, 0 rescinded, 0 expired
Tasks            = 2 live, 5 launched

Tasks
TASK   STATE          NODE   ALLOCATION   MESSAGE
t1     TASK_RUNNING   n1     aaaaaaaa     -
t2     TASK_STAGING   -      -            -
`
	if got := e.out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
