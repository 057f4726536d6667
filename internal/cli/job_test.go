package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var webPF = &api.PlacementFailure{
	JobID: "web", Unplaced: 2, NodesEvaluated: 10,
	NodesFiltered:  map[string]int{"constraint zone = a": 3},
	NodesExhausted: map[string]int{"memory": 7},
}

func TestJobRunFollowsServiceUntilRunning(t *testing.T) {
	f := newFakeServer(t)
	job := testJob("web", structs.JobTypeService, 5)
	f.statuses = []*api.JobStatusResponse{
		status(job, webPF),
		status(job, webPF, testAlloc("web", 0, "running"), testAlloc("web", 1, "running"), testAlloc("web", 2, "running")),
		status(job, nil, testAlloc("web", 0, "running"), testAlloc("web", 1, "running"), testAlloc("web", 2, "running"),
			testAlloc("web", 3, "pending"), testAlloc("web", 4, "running")),
		status(job, nil, testAlloc("web", 0, "running"), testAlloc("web", 1, "running"), testAlloc("web", 2, "running"),
			testAlloc("web", 3, "running"), testAlloc("web", 4, "running")),
	}
	e := newEnv(t, f.srv.URL, FormatTable)
	if err := e.JobRun(context.Background(), "web.yaml", readExample(t, "web.yaml"), RunOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("JobRun: %v", err)
	}
	containsInOrder(t, e.out.String(),
		"Job web registered: version 1 at index 10\n",
		"web: 0/5 running, 5 pending\n",
		"  placement: 2 unplaced (10 nodes evaluated): 3 nodes excluded by constraint zone = a, 7 by memory\n",
		"web: 3/5 running, 2 pending\n",
		"web: 4/5 running, 1 pending\n",
		"web: 5/5 running\n",
		"==> Job web version 1: 5/5 copies running",
	)
	if n := strings.Count(e.out.String(), "placement:"); n != 1 {
		t.Errorf("placement failure printed %d times, want once (only when it changes)", n)
	}
	// The local parse sent the document's job, and the follow used
	// blocking queries on the index of each answer.
	if len(f.registered) != 1 || f.registered[0].Name != "web" || f.registered[0].Count != 5 || f.registered[0].Resources.CPU != 50 {
		t.Fatalf("registered %+v", f.registered)
	}
	wantQueries := []string{"wait=30s", "index=11&wait=30s", "index=12&wait=30s", "index=13&wait=30s"}
	if strings.Join(f.queries, " ") != strings.Join(wantQueries, " ") {
		t.Fatalf("status queries %q, want %q", f.queries, wantQueries)
	}
}

func TestJobRunRedrawsOnTerminal(t *testing.T) {
	f := newFakeServer(t)
	job := testJob("web", structs.JobTypeService, 2)
	f.statuses = []*api.JobStatusResponse{
		status(job, &api.PlacementFailure{Unplaced: 2, Message: "no nodes"}),
		status(job, nil, testAlloc("web", 0, "running"), testAlloc("web", 1, "running")),
	}
	e := newEnv(t, f.srv.URL, FormatTable)
	e.TTY = true
	if err := e.JobRun(context.Background(), "web.yaml", readExample(t, "web.yaml"), RunOptions{}); err != nil {
		t.Fatalf("JobRun: %v", err)
	}
	containsInOrder(t, e.out.String(),
		"\r\x1b[Kweb: 0/2 running, 2 pending",
		"\r\x1b[K  placement: 2 unplaced: no nodes\nweb: 0/2 running, 2 pending",
		"\r\x1b[Kweb: 2/2 running\n",
		"==> Job web",
	)
}

func TestJobRunTimesOutWithReason(t *testing.T) {
	f := newFakeServer(t)
	job := testJob("web", structs.JobTypeService, 5)
	f.statuses = []*api.JobStatusResponse{
		status(job, webPF, testAlloc("web", 0, "running"), testAlloc("web", 1, "running"), testAlloc("web", 2, "running")),
	}
	e := newEnv(t, f.srv.URL, FormatTable)
	// The server never reports progress again; the run must give up.
	err := e.JobRun(context.Background(), "web.yaml", readExample(t, "web.yaml"), RunOptions{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrNotConverged) {
		t.Fatalf("JobRun error %v, want ErrNotConverged", err)
	}
	want := "job web did not converge within 200ms: 3/5 running, 2 pending; 2 unplaced (10 nodes evaluated): 3 nodes excluded by constraint zone = a, 7 by memory"
	if err.Error() != want {
		t.Fatalf("error\n %q\nwant\n %q", err, want)
	}
}

func TestJobRunBatch(t *testing.T) {
	job := testJob("batch", structs.JobTypeBatch, 3)
	failed := testAlloc("batch", 2, "failed")
	failed.TaskState.ExitCode = 3
	failed.TaskState.StartedAt = 1
	failed.ClientDescription = "restarts exhausted"
	failed.RescheduleCount = 1 // the policy allows 1: none left
	// A command that does not exist: no attempt ever ran, so there is no
	// exit code to report, only the start error.
	neverRan := testAlloc("batch", 2, "failed")
	neverRan.ClientDescription = `restart policy allows no restarts; task failed to start: exec: "nosuch": executable file not found in $PATH`
	neverRan.RescheduleCount = 1
	retried := testAlloc("batch", 2, "failed")
	retried.RescheduleCount = 0 // a reschedule is still coming

	cases := []struct {
		name    string
		final   *api.JobStatusResponse
		wantErr string // "" for success
		wantOut string
	}{
		{"all complete", status(job, nil, testAlloc("batch", 0, "complete"), testAlloc("batch", 1, "complete"), testAlloc("batch", 2, "complete")),
			"", "==> Job batch version 1: all 3 copies complete"},
		{"a copy failed for good", status(job, nil, testAlloc("batch", 0, "complete"), testAlloc("batch", 1, "complete"), failed),
			"batch job batch: 1 of 3 copies failed:\n  batch[2] on dev-3: exit code 3 (restarts exhausted)", "batch: 2/3 complete, 1 failed\n"},
		{"a copy failed to start", status(job, nil, testAlloc("batch", 0, "complete"), testAlloc("batch", 1, "complete"), neverRan),
			"batch job batch: 1 of 3 copies failed:\n  batch[2] on dev-3: did not start (restart policy allows no restarts; task failed to start: exec: \"nosuch\": executable file not found in $PATH)",
			"batch: 2/3 complete, 1 failed\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.statuses = []*api.JobStatusResponse{
				status(job, nil, testAlloc("batch", 0, "running"), testAlloc("batch", 1, "pending"), retried),
				tc.final,
			}
			e := newEnv(t, f.srv.URL, FormatTable)
			err := e.JobRun(context.Background(), "batch.yaml", readExample(t, "batch.yaml"), RunOptions{Timeout: time.Minute})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("JobRun: %v", err)
				}
			} else if !errors.Is(err, ErrNotConverged) || err.Error() != tc.wantErr {
				t.Fatalf("JobRun error %q, want ErrNotConverged %q", err, tc.wantErr)
			}
			// A failed copy with a reschedule left is not the end.
			containsInOrder(t, e.out.String(), "batch: 0/3 complete, 1 running, 1 pending, 1 failed\n", tc.wantOut)
		})
	}
}

func TestJobRunDetachAndJSON(t *testing.T) {
	f := newFakeServer(t)
	e := newEnv(t, f.srv.URL, FormatJSON)
	if err := e.JobRun(context.Background(), "-", readExample(t, "web.yaml"), RunOptions{Detach: true}); err != nil {
		t.Fatalf("JobRun: %v", err)
	}
	want := "{\n  \"job_id\": \"web\",\n  \"version\": 1,\n  \"index\": 10\n}\n"
	if e.out.String() != want {
		t.Fatalf("output %q, want %q", e.out.String(), want)
	}
	if len(f.queries) != 0 {
		t.Fatalf("detached run queried status %d times", len(f.queries))
	}
}

func TestJobRunRejectsBadFileLocally(t *testing.T) {
	f := newFakeServer(t)
	e := newEnv(t, f.srv.URL, FormatTable)
	doc := "name: web\ncont: 3\ndriver: exec\nconfig: {command: /bin/true}\nresources: {cpu: 1, memory_mb: 1}\n"
	err := e.JobRun(context.Background(), "web.yaml", []byte(doc), RunOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "web.yaml: invalid job document: line 2: cont: unknown field") ||
		!strings.Contains(err.Error(), `did you mean "count"?`) {
		t.Fatalf("error %v", err)
	}
	if len(f.registered) != 0 {
		t.Fatal("an invalid document reached the server")
	}
}

func TestServerErrorsAreReadable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	deadURL := closed.URL
	closed.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 400, "invalid job: resources.cpu: must be > 0 millicores (got 0); driver: unknown driver \"docker\"", []structs.FieldError{
			{Field: "resources.cpu", Rule: "must be > 0 millicores (got 0)"},
			{Field: "driver", Rule: `unknown driver "docker"`},
		})
	})
	mux.HandleFunc("POST /v1/job/{id}/scale", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 404, `job "nope" not found`, nil)
	})
	mux.HandleFunc("GET /v1/scheduler/status", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 503, "no leader", nil)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cases := []struct {
		name string
		addr string
		run  func(e *Env) error
		want string
	}{
		{"unreachable", deadURL, func(e *Env) error { return e.JobList(context.Background()) },
			"listing jobs: cannot reach gantry server at " + deadURL + ": is `gantry server` or `gantry dev` running? (dial tcp "},
		{"unreachable, several addresses", deadURL + "," + deadURL, func(e *Env) error { return e.NodeList(context.Background()) },
			"listing nodes: cannot reach gantry server at " + deadURL + ", " + deadURL + ": is `gantry server`"},
		{"400 with fields", srv.URL, func(e *Env) error {
			return e.JobRun(context.Background(), "web.yaml", readExample(t, "web.yaml"), RunOptions{})
		}, "registering job web: invalid job:\n  resources.cpu: must be > 0 millicores (got 0)\n  driver: unknown driver \"docker\""},
		{"404", srv.URL, func(e *Env) error { return e.JobScale(context.Background(), "nope", "3") },
			`scaling job nope: job "nope" not found`},
		{"503", srv.URL, func(e *Env) error { return e.SchedulerStatus(context.Background()) },
			"scheduler status: the cluster has no leader (servers may be electing one; retry in a moment): no leader"},
		{"bad scale count", srv.URL, func(e *Env) error { return e.JobScale(context.Background(), "web", "-1") },
			`count "-1": must be a whole number from 0 to 100000`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.addr, FormatTable)
			err := tc.run(e.Env)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error\n %q\nwant prefix\n %q", err, tc.want)
			}
		})
	}
}

func TestComputeProgress(t *testing.T) {
	svc := testJob("web", structs.JobTypeService, 3)
	old := testAlloc("web", 0, "running")
	old.JobVersion = 0 // an older version does not count
	lost := testAlloc("web", 1, "lost")
	lost.DesiredStatus = structs.AllocDesiredStop
	replacement := testAlloc("web", 1, "running")
	replacement.CreateIndex = 500
	extra := testAlloc("web", 7, "running") // beyond count: being scaled down
	stopping := testAlloc("web", 2, "running")
	stopping.DesiredStatus = structs.AllocDesiredStop

	cases := []struct {
		name   string
		st     *api.JobStatusResponse
		line   string
		done   bool
		unplac int
	}{
		{"nothing placed", status(svc, nil), "web: 0/3 running, 3 pending", false, 3},
		{"old version ignored", status(svc, nil, old), "web: 0/3 running, 3 pending", false, 3},
		{"newest copy per index wins", status(svc, nil, lost, replacement), "web: 1/3 running, 2 pending", false, 2},
		{"stopping and extra copies", status(svc, nil, stopping, extra), "web: 0/3 running, 3 pending", false, 2},
		{"all running", status(svc, nil, testAlloc("web", 0, "running"), testAlloc("web", 1, "running"), testAlloc("web", 2, "running")),
			"web: 3/3 running", true, 0},
		{"scaled to zero", status(testJob("web", structs.JobTypeService, 0), nil, testAlloc("web", 0, "running")), "web: 0/0 running", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := computeProgress(tc.st)
			if p.line() != tc.line || p.done != tc.done || p.unplaced != tc.unplac {
				t.Fatalf("got %q done=%v unplaced=%d, want %q done=%v unplaced=%d", p.line(), p.done, p.unplaced, tc.line, tc.done, tc.unplac)
			}
		})
	}
}

func TestPlacementFailureText(t *testing.T) {
	cases := []struct {
		pf   *api.PlacementFailure
		want string
	}{
		{webPF, "2 unplaced (10 nodes evaluated): 3 nodes excluded by constraint zone = a, 7 by memory"},
		{&api.PlacementFailure{Unplaced: 1, NodesEvaluated: 1, NodesExhausted: map[string]int{"cpu": 1}}, "1 unplaced (1 node evaluated): 1 node excluded by cpu"},
		{&api.PlacementFailure{Unplaced: 4, NodesFiltered: map[string]int{"draining": 1, "not ready": 1, "constraint zone = d": 2}},
			"4 unplaced: 2 nodes excluded by constraint zone = d, 1 by draining, 1 by not ready"},
		{&api.PlacementFailure{Unplaced: 1, Message: "no nodes registered"}, "1 unplaced: no nodes registered"},
		{&api.PlacementFailure{Unplaced: 1, Message: "evil\x1b[2J\nmessage"}, "1 unplaced: evil[2J message"},
	}
	for _, tc := range cases {
		if got := placementFailureText(tc.pf); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestJobRunInterrupted(t *testing.T) {
	f := newFakeServer(t)
	job := testJob("web", structs.JobTypeService, 5)
	f.statuses = []*api.JobStatusResponse{status(job, nil)}
	e := newEnv(t, f.srv.URL, FormatTable)
	out := &signalWriter{wrote: make(chan struct{})}
	e.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.JobRun(ctx, "web.yaml", readExample(t, "web.yaml"), RunOptions{}) }()
	<-out.wrote // registered; now following
	cancel()    // Ctrl-C
	err := <-done
	if err == nil || errors.Is(err, ErrNotConverged) ||
		err.Error() != "stopped following job web (Ctrl-C); it stays registered: `gantry job status web` shows its progress" {
		t.Fatalf("error %v", err)
	}
}

// A server that sends no index cannot block; the follow polls it instead of
// spinning or stalling.
func TestJobRunPollsServerWithoutIndex(t *testing.T) {
	defer func(d time.Duration) { pollPause = d }(pollPause)
	pollPause = time.Millisecond
	job := testJob("web", structs.JobTypeService, 1)
	states := []*api.JobStatusResponse{status(job, nil), status(job, nil, testAlloc("web", 0, "running"))}
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 0, &api.JobRegisterResponse{JobID: "web", Version: 1, Index: 10})
	})
	mux.HandleFunc("GET /v1/job/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		st := states[min(calls, len(states)-1)]
		calls++
		writeJSON(w, 0, st) // no X-Gantry-Index
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	e := newEnv(t, srv.URL, FormatTable)
	if err := e.JobRun(context.Background(), "web.yaml", readExample(t, "web.yaml"), RunOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("JobRun: %v", err)
	}
	containsInOrder(t, e.out.String(), "web: 0/1 running, 1 pending\n", "web: 1/1 running\n")
}
