package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
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
		if err := job.Validate(driver.Validators()); err != nil {
			return
		}
		if job.Name == "" || job.Resources.CPU <= 0 || job.Count < 0 {
			t.Fatalf("invalid job accepted: %+v", job)
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
