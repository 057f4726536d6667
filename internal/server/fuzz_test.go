package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// FuzzJobBody feeds arbitrary bodies through the strict decoder and the
// job rules the register endpoint applies: they may be refused, never
// crash, and whatever passes is a valid job.
func FuzzJobBody(f *testing.F) {
	for _, seed := range []string{
		`{"job":{"name":"web","driver":"mock","count":2,"resources":{"cpu":100,"memory_mb":64}}}`,
		`{"job":{"name":"x","driver":"exec","config":{"command":"/bin/true","args":["a"]},"resources":{"cpu":1,"memory_mb":1},
		  "constraints":[{"label":"zone","op":"in","values":["a","b"]},{"label":"attr.os","op":"regexp","value":"^lin"}],
		  "restart":{"attempts":1,"interval":"1m","delay":"1s"},"reschedule":{"attempts":0,"delay":5}}}`,
		`{"job":null}`, `{}`, `[]`, `{"job":{"count":-1}}`, `{"job":{"restart":{"delay":"forever"}}}`,
		// Ports, services and checks, volumes, tasks of a copy.
		`{"job":{"name":"web","driver":"docker","config":{"image":"busybox"},"resources":{"cpu":20,"memory_mb":16},
		  "network":{"ports":[{"label":"http"},{"label":"admin","static":8080,"to":80}]},
		  "services":[{"name":"web","port":"http","tags":["v1"],"checks":[{"type":"http","path":"/health","interval":"1s","timeout":"2s",
		  "success_threshold":2,"failure_threshold":3,"check_restart":{"limit":5,"grace":"30s"}},{"type":"script","command":"/bin/true","args":[]}]}]}}`,
		`{"job":{"name":"db","driver":"mock","resources":{"cpu":1,"memory_mb":1},
		  "volumes":{"data":{"type":"host","source":"pgdata","read_only":true},"cache":{"type":"docker","source":"c"}},
		  "volume_mounts":[{"volume":"data","destination":"/d"}],
		  "tasks":[{"name":"init","driver":"mock","lifecycle":{"hook":"prestart"},"resources":{"cpu":1,"memory_mb":1}},
		           {"name":"log","driver":"mock","lifecycle":{"hook":"poststart","sidecar":true},"volume_mounts":[{"volume":"cache","destination":"/c"}]}]}}`,
		`{"job":{"name":"p","driver":"mock","resources":{"cpu":1,"memory_mb":1},"network":{"ports":[{"label":"a","static":70000}]},"services":[{"name":"-bad"}]}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPut, "/v1/jobs", strings.NewReader(body))
		w := httptest.NewRecorder()
		var req api.JobRegisterRequest
		if err := decodeBody(w, r, &req); err != nil || req.Job == nil {
			return
		}
		job := req.Job.Copy()
		job.Canonicalize()
		if err := job.Validate(driverschema.Default); err != nil {
			return
		}
		if job.Name == "" || job.Resources.CPU <= 0 || job.Count < 0 {
			t.Fatalf("invalid job accepted: %+v", job)
		}
	})
}

// FuzzFSMEntry feeds arbitrary Raft entries (a type byte and a body) to
// the FSM, after a job and a node exist: an entry may be refused with an
// error, never crash the FSM, and a refused batch changes nothing.
func FuzzFSMEntry(f *testing.F) {
	seeds := []struct {
		t    structs.MessageType
		body string
	}{
		{structs.JobBatchRequestType, `{"writes":[{"register":{"job":{"id":"b","name":"b","version":1}}},{"deregister":{"job_id":"b","time":3}}]}`},
		{structs.JobBatchRequestType, `{"writes":[{"deregister":{"job_id":"nope","purge":true}},{}]}`},
		{structs.JobBatchRequestType, `{"writes":[{"register":{}}]}`},
		{structs.JobBatchRequestType, `{"writes":null}`},
		{structs.ApplyPlanRequestType, `{"job_id":"web","job_version":1,"allocs":[{"id":"a1","job_id":"web","node_id":"n1","desired_status":"run"}]}`},
		{structs.ApplyPlanRequestType, `{"job_id":"web","job_version":9,"allocs":[{"id":"a2","job_id":"web","node_id":"n1","desired_status":"evict","preempted_by":"x"},null]}`},
		{structs.ApplyPlanBatchRequestType, `{"plans":[null]}`},
		{structs.JobRegisterRequestType, `{"job":null}`},
		{99, `{}`},
	}
	for _, s := range seeds {
		f.Add(byte(s.t), []byte(s.body))
	}
	// The binary entries the server proposes for plans and reports.
	for _, e := range []struct {
		t   structs.MessageType
		req any
	}{
		{structs.ApplyPlanRequestType, &structs.ApplyPlanRequest{JobID: "web", JobVersion: 1, Allocs: []*structs.Allocation{
			{ID: "4f1d2c3b-0000-4a5b-8c6d-000000000001", JobID: "web", NodeID: "n1", DesiredStatus: structs.AllocDesiredRun}, nil}}},
		{structs.AllocClientUpdateBatchRequestType, &structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{
			{NodeID: "n1", Updates: []*structs.AllocClientUpdate{{ID: "a1", ClientStatus: structs.AllocClientRunning}}}}}},
	} {
		b, err := encodeEntry(e.t, e.req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[0], b[1:])
	}
	f.Fuzz(func(t *testing.T, mt byte, body []byte) {
		st, err := state.New()
		if err != nil {
			t.Fatal(err)
		}
		fs := &fsm{state: st, logger: slog.New(slog.DiscardHandler)}
		if err := st.UpsertJob(1, &structs.Job{ID: "web", Name: "web", Version: 1}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpsertNode(1, &structs.Node{ID: "n1", Status: structs.NodeStatusReady}); err != nil {
			t.Fatal(err)
		}
		before := st.Snapshot().Index()
		resp := fs.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: append([]byte{mt}, body...)})
		if _, failed := resp.(error); failed && st.Snapshot().Index() != before {
			t.Fatalf("a refused entry changed the store (index %d -> %d)", before, st.Snapshot().Index())
		}
	})
}

// FuzzNodesBodies feeds arbitrary bodies through the strict decoder and
// the rules of the many-node endpoints (watch, batched reports, batched
// heartbeats): they may be refused, never crash, and a watch that passes
// names between 1 and api.MaxWatchNodes valid nodes.
func FuzzNodesBodies(f *testing.F) {
	for _, seed := range []string{
		`{"nodes":{"n1":{"index":3,"known":2},"n2":{}}}`,
		`{"nodes":{"":{"index":1}}}`, `{"nodes":{"n1":{"known":-1}}}`, `{"nodes":{"n1":{"index":-1}}}`,
		`{"nodes":{"n1":[{"id":"a","client_status":"running","task_state":{"state":"running"}}]}}`,
		`{"node_ids":["n1","n2"]}`, `{"nodes":null}`, `{}`, `[]`, `{"nodes":{"n1":{}}} trailing`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		decode := func(v any) error {
			r := httptest.NewRequest(http.MethodPost, "/v1/nodes/allocations/watch", strings.NewReader(body))
			return decodeBody(httptest.NewRecorder(), r, v)
		}
		var watch api.NodeWatchRequest
		if decode(&watch) == nil && validateNodeWatch(&watch) == nil {
			if len(watch.Nodes) == 0 || len(watch.Nodes) > api.MaxWatchNodes {
				t.Fatalf("watch of %d nodes accepted", len(watch.Nodes))
			}
			for id, st := range watch.Nodes {
				if id == "" || len(id) > 128 || st.Known < 0 {
					t.Fatalf("invalid node %q %+v accepted", id, st)
				}
			}
			nw := newNodeWatcher(&watch)
			if len(nw.ids) != len(watch.Nodes) {
				t.Fatalf("watcher holds %d nodes, want %d", len(nw.ids), len(watch.Nodes))
			}
		}
		var upd api.NodesAllocUpdateRequest
		if decode(&upd) == nil {
			if ids, err := validateNodesUpdate(&upd); err == nil {
				for _, id := range ids {
					for _, u := range upd.Nodes[id] {
						if u == nil || u.ID == "" || !clientStatuses[u.ClientStatus] {
							t.Fatalf("invalid update %+v of node %q accepted", u, id)
						}
					}
				}
			}
		}
		var hb api.NodesHeartbeatRequest
		_ = decode(&hb)
	})
}
