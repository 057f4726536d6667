package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// fakeServer implements the server endpoints an agent uses: register,
// heartbeat, the node's allocations as a blocking query, and allocation
// updates. It keeps every update it receives so tests can check the
// sequence of reports.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server
	ttl time.Duration

	mu            sync.Mutex
	index         uint64
	changed       chan struct{} // closed and replaced on every change
	nodes         map[string]*structs.Node
	registrations int
	heartbeats    int
	updateCalls   int
	watches       int                           // watch requests received
	lastWatch     map[string]api.NodeWatchState // what the last watch of each node said it held
	// failHeartbeats makes the next heartbeats answer 500.
	failHeartbeats int
	allocs         map[string]*structs.Allocation
	history        map[string][]*structs.AllocClientUpdate
	// catalog answers GET /v1/catalog (dns_test.go).
	catalog *catalogServer
}

func newFakeServer(t *testing.T) *fakeServer {
	fs := &fakeServer{t: t, ttl: 300 * time.Millisecond, index: 1, changed: make(chan struct{}),
		nodes: map[string]*structs.Node{}, allocs: map[string]*structs.Allocation{}, lastWatch: map[string]api.NodeWatchState{},
		history: map[string][]*structs.AllocClientUpdate{}, catalog: &catalogServer{changed: make(chan struct{})}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/node/register", fs.register)
	mux.HandleFunc("POST /v1/node/{id}/heartbeat", fs.heartbeat)
	mux.HandleFunc("POST /v1/nodes/allocations/watch", fs.watch)
	mux.HandleFunc("POST /v1/node/{id}/allocations", fs.updateAllocs)
	mux.Handle("GET /v1/catalog", fs.catalog)
	fs.srv = httptest.NewServer(mux)
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fakeServer) addr() string { return fs.srv.Listener.Addr().String() }

// bumpLocked records a change and wakes blocking queries.
func (fs *fakeServer) bumpLocked() uint64 {
	fs.index++
	close(fs.changed)
	fs.changed = make(chan struct{})
	return fs.index
}

func writeJSON(w http.ResponseWriter, code int, index uint64, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(api.IndexHeader, strconv.FormatUint(index, 10))
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (fs *fakeServer) register(w http.ResponseWriter, r *http.Request) {
	var req api.NodeRegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Node == nil || req.Node.ID == "" {
		writeJSON(w, 400, 0, api.ErrorResponse{Error: fmt.Sprintf("bad register request: %v", err)})
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nodes[req.Node.ID] = req.Node
	fs.registrations++
	idx := fs.bumpLocked()
	writeJSON(w, 200, idx, api.NodeRegisterResponse{NodeID: req.Node.ID, HeartbeatTTL: structs.Duration(fs.ttl), Index: idx})
}

func (fs *fakeServer) knownLocked(w http.ResponseWriter, id string) bool {
	if _, ok := fs.nodes[id]; !ok {
		writeJSON(w, 404, fs.index, api.ErrorResponse{Error: "node " + id + " not found"})
		return false
	}
	return true
}

func (fs *fakeServer) heartbeat(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.knownLocked(w, r.PathValue("id")) {
		return
	}
	if fs.failHeartbeats > 0 {
		fs.failHeartbeats--
		writeJSON(w, 500, fs.index, api.ErrorResponse{Error: "injected failure"})
		return
	}
	fs.heartbeats++
	writeJSON(w, 200, fs.index, api.HeartbeatResponse{HeartbeatTTL: structs.Duration(fs.ttl), Index: fs.index})
}

// watch implements POST /v1/nodes/allocations/watch as the server does,
// from the agent's point of view: the first frame of a watch holds each
// node's full list, later frames only the allocations whose server-side
// fields changed, or the full list again after a removal; jobs are sent
// once per watch and referred to by number.
func (fs *fakeServer) watch(w http.ResponseWriter, r *http.Request) {
	var req api.NodeWatchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Nodes) == 0 {
		writeJSON(w, 400, 0, api.ErrorResponse{Error: fmt.Sprintf("bad watch request: %v", err)})
		return
	}
	stream := r.URL.Query().Get("stream") == "true"
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	if wait == 0 {
		wait = 30 * time.Second
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	fs.mu.Lock()
	fs.watches++
	for id, st := range req.Nodes {
		fs.lastWatch[id] = st
	}
	fs.mu.Unlock()
	sent := map[string]map[string]string{} // node -> alloc ID -> server-side fields
	jobs := map[string]int{}
	started := false
	for {
		fs.mu.Lock()
		f := &api.NodeWatchFrame{Index: fs.index, Nodes: map[string]*api.NodeAllocDelta{}}
		for id := range req.Nodes {
			if _, ok := fs.nodes[id]; !ok {
				f.Nodes[id] = &api.NodeAllocDelta{NotFound: true}
				delete(req.Nodes, id)
				continue
			}
			prev, cur := sent[id], map[string]string{}
			var mine []*structs.Allocation
			for _, a := range fs.allocs {
				if a.NodeID == id {
					mine = append(mine, a)
					c := a.Copy()
					c.ClientStatus, c.ClientDescription, c.TaskState = "", "", structs.TaskState{}
					b, _ := json.Marshal(c)
					cur[a.ID] = string(b)
				}
			}
			full := prev == nil
			for aid := range prev {
				if _, ok := cur[aid]; !ok {
					full = true // a removal
				}
			}
			d := &api.NodeAllocDelta{Index: fs.index, Full: full}
			for _, a := range mine {
				if !full && prev[a.ID] == cur[a.ID] {
					continue
				}
				c := a.Copy()
				wa := &api.WatchAlloc{Allocation: c}
				if c.Job != nil {
					jb, _ := json.Marshal(c.Job) // tests reuse job IDs and versions with other specs
					k := string(jb)
					if jobs[k] == 0 {
						jobs[k] = len(jobs) + 1
						if f.Jobs == nil {
							f.Jobs = map[int]*structs.Job{}
						}
						f.Jobs[jobs[k]] = c.Job
					}
					wa.JobRef = jobs[k]
					c.Job = nil
				}
				d.Allocs = append(d.Allocs, wa)
			}
			sent[id] = cur
			if full || len(d.Allocs) > 0 {
				f.Nodes[id] = d
			}
		}
		ch := fs.changed
		fs.mu.Unlock()
		if len(f.Nodes) > 0 || !started {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(200)
				started = true
			}
			if err := json.NewEncoder(w).Encode(f); err != nil || !stream {
				return
			}
			http.NewResponseController(w).Flush()
		}
		if len(req.Nodes) == 0 {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (fs *fakeServer) updateAllocs(w http.ResponseWriter, r *http.Request) {
	var req api.AllocUpdateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, 0, api.ErrorResponse{Error: err.Error()})
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.knownLocked(w, r.PathValue("id")) {
		return
	}
	fs.updateCalls++
	for _, u := range req.Updates {
		fs.history[u.ID] = append(fs.history[u.ID], u)
		if a, ok := fs.allocs[u.ID]; ok {
			a.ClientStatus, a.ClientDescription, a.TaskState, a.TaskStates = u.ClientStatus, u.ClientDescription, u.TaskState, u.TaskStates
			a.Health = u.Health
		}
	}
	idx := fs.bumpLocked()
	writeJSON(w, 200, idx, api.IndexResponse{Index: idx})
}

// --- test controls ---

func (fs *fakeServer) addAlloc(a *structs.Allocation) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	a = a.Copy()
	a.DesiredStatus = structs.AllocDesiredRun
	a.ClientStatus = structs.AllocClientPending
	fs.allocs[a.ID] = a
	fs.bumpLocked()
}

func (fs *fakeServer) setDesired(id, status string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.allocs[id].DesiredStatus = status
	fs.allocs[id].DesiredDescription = "stopped by test"
	fs.bumpLocked()
}

// apply changes several allocations in one index, as one plan would.
func (fs *fakeServer) apply(f func(allocs map[string]*structs.Allocation)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f(fs.allocs)
	fs.bumpLocked()
}

func (fs *fakeServer) removeAlloc(id string) {
	fs.apply(func(m map[string]*structs.Allocation) { delete(m, id) })
}

func (fs *fakeServer) forgetNode(id string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.nodes, id)
}

func (fs *fakeServer) alloc(id string) *structs.Allocation {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.allocs[id].Copy()
}

func (fs *fakeServer) updates(id string) []*structs.AllocClientUpdate {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]*structs.AllocClientUpdate(nil), fs.history[id]...)
}

func (fs *fakeServer) counts() (registrations, heartbeats int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.registrations, fs.heartbeats
}

func (fs *fakeServer) node(id string) *structs.Node {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.nodes[id].Copy()
}

// waitStatus waits until the server's copy of an allocation has the client
// status, and returns it.
func (fs *fakeServer) waitStatus(id, status string) *structs.Allocation {
	fs.t.Helper()
	var a *structs.Allocation
	eventually(fs.t, fmt.Sprintf("alloc %s to be %s", id, status), func() bool {
		a = fs.alloc(id)
		return a != nil && a.ClientStatus == status
	})
	return a
}

// statuses is the sequence of client statuses reported for an allocation,
// with repeats collapsed.
func (fs *fakeServer) statuses(id string) string {
	var out []string
	for _, u := range fs.updates(id) {
		if len(out) == 0 || out[len(out)-1] != u.ClientStatus {
			out = append(out, u.ClientStatus)
		}
	}
	return strings.Join(out, ",")
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
