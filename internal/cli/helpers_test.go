package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// now is the fixed clock of every test: ages and times render the same on
// every run.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) int64 { return now.Add(-d).UnixNano() }

// fakeServer serves scripted API answers. statuses are successive states of
// one job, served to blocking queries: a query with index N gets the first
// state with a higher index, or blocks until the client gives up, as a real
// server does when nothing changes.
type fakeServer struct {
	t   *testing.T
	mux *http.ServeMux
	srv *httptest.Server

	mu         sync.Mutex
	statuses   []*api.JobStatusResponse
	registered []*api.Job
	queries    []string // raw query strings of status requests
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, mux: http.NewServeMux()}
	f.mux.HandleFunc("PUT /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var req api.JobRegisterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeErr(w, 400, "bad body: "+err.Error(), nil)
			return
		}
		f.mu.Lock()
		f.registered = append(f.registered, req.Job)
		f.mu.Unlock()
		writeJSON(w, 0, &api.JobRegisterResponse{JobID: req.Job.Name, Version: 1, Index: 10})
	})
	f.mux.HandleFunc("GET /v1/job/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		statuses := f.statuses
		f.mu.Unlock()
		idx, _ := strconv.Atoi(r.URL.Query().Get("index"))
		// State i is served at index 11+i (after the register at 10).
		for i, st := range statuses {
			if 11+i > idx {
				writeJSON(w, uint64(11+i), st)
				return
			}
		}
		<-r.Context().Done() // nothing newer: block like a real server
	})
	f.srv = httptest.NewServer(f.mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, index uint64, v any) {
	w.Header().Set("Content-Type", "application/json")
	if index > 0 {
		w.Header().Set(api.IndexHeader, strconv.FormatUint(index, 10))
	}
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string, fields []structs.FieldError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(&api.ErrorResponse{Error: msg, Fields: fields})
}

// serve answers GET/POST/... path with v (status 200).
func (f *fakeServer) serve(pattern string, v any) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 5, v) })
}

// testEnv is an Env writing to buffers, with the fixed clock.
type testEnv struct {
	*Env
	out, err *bytes.Buffer
}

func newEnv(t *testing.T, address, format string) *testEnv {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections) // no keep-alive goroutines for goleak
	c, err := api.NewClient(api.Config{Address: address, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	out, errw := &bytes.Buffer{}, &bytes.Buffer{}
	return &testEnv{
		Env: &Env{Client: c, Out: out, Err: errw, Format: format, Now: func() time.Time { return now }},
		out: out, err: errw,
	}
}

// containsInOrder fails unless every want appears in s, in order.
func containsInOrder(t *testing.T, s string, want ...string) {
	t.Helper()
	rest := s
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output\n%s\ndoes not contain (in order) %q", s, w)
		}
		rest = rest[i+len(w):]
	}
}

var _ io.Writer = (*bytes.Buffer)(nil)

// Fixtures.

func testJob(name string, typ structs.JobType, count int) *api.Job {
	return &api.Job{
		ID: name, Name: name, Type: typ, Priority: 50, Count: count, Version: 1,
		Resources: api.Resources{CPU: 50, MemoryMB: 32}, Driver: "exec",
		Reschedule: api.ReschedulePolicy{Attempts: 1, Unlimited: typ == structs.JobTypeService},
		Status:     structs.JobStatusRunning, SubmitTime: ago(90 * time.Second),
	}
}

func testAlloc(job string, idx int, client string) *api.Allocation {
	return &api.Allocation{
		ID:    "a" + strconv.Itoa(idx) + "c0ffee-0000-0000-0000-000000000000",
		JobID: job, JobVersion: 1, Name: structs.AllocName(job, idx), Index: idx,
		NodeID: "n1234567-89ab", NodeName: "dev-" + strconv.Itoa(idx%3+1),
		Resources:     api.Resources{CPU: 50, MemoryMB: 32},
		DesiredStatus: structs.AllocDesiredRun, ClientStatus: client,
		CreateIndex: uint64(100 + idx), CreateTime: ago(time.Duration(idx+1) * time.Minute),
	}
}

func status(job *api.Job, pf *api.PlacementFailure, allocs ...*api.Allocation) *api.JobStatusResponse {
	sum := map[string]int{}
	for _, a := range allocs {
		sum[a.ClientStatus]++
	}
	return &api.JobStatusResponse{Job: job, Allocations: allocs, Summary: sum, PlacementFailure: pf}
}
