package peerexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// The peer's job API: the server's /v1/jobs shapes (api package), so
// `gantry job run|status|list|stop|scale` and `gantry alloc status|logs`
// work with --address naming any peer. A request about one job is
// served by the job's owner: another peer forwards it there (one hop,
// marked so it never bounces). Listings ask every slot owner for its
// part (?local=true) and merge them.

const (
	forwardedHeader = "X-Gantry-Peer-Forwarded"
	maxBody         = 4 << 20
	logPoll         = 250 * time.Millisecond
	fanoutTimeout   = 5 * time.Second
)

// Handler serves the job API and passes every other request to next (the
// peer's status and UI).
func (s *Service) Handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	limit := s.limitRequests
	mux.HandleFunc("PUT /v1/jobs", limit(s.jobRegister))
	mux.HandleFunc("POST /v1/jobs", limit(s.jobRegister))
	mux.HandleFunc("GET /v1/jobs", limit(s.jobList))
	mux.HandleFunc("GET /v1/job/{id}", limit(s.jobRoute(s.jobGet)))
	mux.HandleFunc("GET /v1/job/{id}/status", limit(s.jobRoute(s.jobStatus)))
	mux.HandleFunc("GET /v1/job/{id}/allocations", limit(s.jobRoute(s.jobAllocs)))
	mux.HandleFunc("POST /v1/job/{id}/scale", limit(s.jobRoute(s.jobScale)))
	mux.HandleFunc("DELETE /v1/job/{id}", limit(s.jobRoute(s.jobStop)))
	mux.HandleFunc("GET /v1/allocations", limit(s.allocList))
	mux.HandleFunc("GET /v1/allocation/{id}", limit(s.allocGet))
	// logs (which may follow a task for long), the leave and the streams
	// are not counted: they are few and long by nature
	mux.HandleFunc("GET /v1/allocation/{id}/logs", s.allocLogs)
	mux.HandleFunc("GET /v1/peer/members", limit(s.members))
	mux.HandleFunc("POST /v1/peer/leave", s.leave)
	if s.streams != nil {
		mux.HandleFunc("GET "+streamPath, s.streams.accept)
	}
	api := requireUser(s.cfg.Auth, mux)
	root := http.NewServeMux()
	root.Handle("/", next)
	for _, p := range []string{"/v1/jobs", "/v1/job/", "/v1/allocations", "/v1/allocation/", "/v1/peer/members", "/v1/peer/leave", streamPath} {
		root.Handle(p, api)
	}
	return root
}

// MaxRequests bounds the job API requests a peer serves at once (logs,
// leave and the peers' streams aside); one more is refused at once with
// 503 and Retry-After, to be sent again: the work clients queue on a
// peer is bounded, so a saturated peer is not buried under requests
// (every request is a goroutine wanting CPU beside the cluster bus).
const MaxRequests = 256

// limitRequests serves h within the peer's MaxRequests.
func (s *Service) limitRequests(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.reqs <- struct{}{}:
		default:
			s.busy.Add(1)
			writeError(w, fmt.Errorf("%w: %d API requests in progress on this peer (limit %d); try again later", ErrBusy, len(s.reqs), cap(s.reqs)))
			return
		}
		defer func() { <-s.reqs }()
		h(w, r)
	}
}

// Authenticator checks users against the peer's store (kv.Server).
type Authenticator interface {
	AuthRequired() bool
	CheckUser(user, pass string) bool
}

// requireUser makes h answer only requests with HTTP basic credentials
// of an ACL user of the store (user "default" for requirepass), whenever
// the store requires AUTH. The user is checked as AUTH does; the API
// does not apply the user's command rules (a logged-in user may use
// the whole job API).
func requireUser(auth Authenticator, h http.Handler) http.Handler {
	if auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.AuthRequired() {
			h.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		if user == "" {
			user = "default"
		}
		switch {
		case !ok:
			unauthorized(w, "authentication required: this peer has users or requirepass; send the user and password as HTTP basic credentials")
		case !auth.CheckUser(user, pass):
			unauthorized(w, "authentication failed: wrong user name or password, or the user is off")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="gantry peer", charset="UTF-8"`)
	writeError(w, &httpError{code: http.StatusUnauthorized, msg: msg})
}

type httpError struct {
	code   int
	msg    string
	fields []structs.FieldError
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	resp := api.ErrorResponse{Error: err.Error()}
	var he *httpError
	var ve *structs.ValidationError
	switch {
	case errors.As(err, &he):
		code, resp.Fields = he.code, he.fields
	case errors.As(err, &ve):
		code, resp.Fields = http.StatusBadRequest, ve.Errors
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrBusy):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrNotOwner), errors.Is(err, ErrClusterDown):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, resp)
}

func requestNamespace(r *http.Request) (string, error) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		return structs.DefaultNamespace, nil
	}
	if ns == structs.AllNamespaces {
		return ns, nil
	}
	if err := structs.ValidateNamespaceName(ns); err != nil {
		return "", badRequest("namespace: %v", err)
	}
	return ns, nil
}

func jobKey(r *http.Request) (string, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return "", err
	}
	if ns == structs.AllNamespaces {
		return "", badRequest("namespace: name one namespace to address a job, not %q", ns)
	}
	name := r.PathValue("id")
	if name == "" || strings.ContainsRune(name, '/') {
		return "", badRequest("job name %q: names hold no '/'; give the namespace with ?namespace=", name)
	}
	return structs.JobKey(ns, name), nil
}

// ownerOf returns the owner of a job and its API address ("" for this
// peer), or an error when it is not known. It takes no engine lock: the
// owner is the cluster's routing snapshot's, the address the last tick's
// copy of the loads' (the engine's loads when that has none yet), so a
// request is routed while the engine is busy.
func (s *Service) ownerOf(jobID string) (string, string, error) {
	slot := JobSlot(jobID)
	owner, self := string(s.cluster.SlotOwner(slot)), s.ID()
	switch owner {
	case "":
		return "", "", fmt.Errorf("%w: the job's slot %d has no owner", ErrClusterDown, slot)
	case self:
		return owner, "", nil
	}
	var addr string
	if m := s.apiAddrs.Load(); m != nil {
		addr = (*m)[owner]
	}
	if addr == "" {
		s.with(func(e *Engine, _ ClusterView) {
			if l := e.loads[owner]; l != nil {
				addr = l.load.HTTPAddr
			}
		})
	}
	if addr == "" {
		return "", "", fmt.Errorf("%w: the API address of owner %s is not known yet", ErrClusterDown, owner)
	}
	return owner, addr, nil
}

// forward sends the request on to the peer at addr and copies its answer
// (streamed: log follows go through).
func (s *Service) forward(w http.ResponseWriter, r *http.Request, addr string) {
	if r.Header.Get(forwardedHeader) != "" {
		writeError(w, fmt.Errorf("%w: ownership moved while the request was forwarded; try again", ErrClusterDown))
		return
	}
	s.forwarded.Add(1)
	target := &url.URL{Scheme: s.scheme, Host: addr}
	rp := &httputil.ReverseProxy{
		Transport: s.client.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = addr
			pr.Out.Header.Set(forwardedHeader, "1")
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, fmt.Errorf("%w: forwarding to %s: %w", ErrClusterDown, addr, err))
		},
	}
	rp.ServeHTTP(w, r)
}

// jobRoute serves a job's request on its owner, forwarding it there.
func (s *Service) jobRoute(h func(w http.ResponseWriter, r *http.Request, jobID string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := jobKey(r)
		if err != nil {
			writeError(w, err)
			return
		}
		_, addr, err := s.ownerOf(id)
		if err != nil {
			writeError(w, err)
			return
		}
		if addr != "" {
			s.forward(w, r, addr)
			return
		}
		out, err := h(w, r, id)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Service) jobRegister(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, badRequest("reading the body: %v", err))
		return
	}
	if len(body) > maxBody {
		writeError(w, &httpError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body larger than %d bytes", maxBody)})
		return
	}
	var req api.JobRegisterRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, badRequest("invalid JSON body: %v", err))
		return
	}
	if req.Job == nil {
		writeError(w, &httpError{code: http.StatusBadRequest, msg: "invalid job: job is required",
			fields: []structs.FieldError{{Field: "job", Rule: "is required"}}})
		return
	}
	ns, err := requestNamespace(r)
	if err != nil {
		writeError(w, err)
		return
	}
	job := req.Job.Copy()
	switch {
	case ns == structs.AllNamespaces:
		writeError(w, badRequest("namespace: a job is registered in one namespace, not %q", ns))
		return
	case job.Namespace == "":
		job.Namespace = ns
	case job.Namespace != ns:
		writeError(w, badRequest("invalid job: namespace: the job names namespace %q but the request is for %q", job.Namespace, ns))
		return
	}
	job.FrameworkTask = nil
	job.Canonicalize()
	if err := job.Validate(driverschema.Default); err != nil {
		writeError(w, err)
		return
	}
	if job.HasGroups() {
		writeError(w, badRequest("invalid job: groups: jobs with task groups are run by gantry agents, not by peers (peers run one task per copy)"))
		return
	}
	if job.Driver != "mock" && job.Driver != "exec" {
		writeError(w, badRequest("invalid job: driver %q: peers run exec and mock tasks", job.Driver))
		return
	}
	job.ID = structs.JobKey(job.Namespace, job.Name)
	_, addr, err := s.ownerOf(job.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	if addr != "" {
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.ContentLength = int64(len(body))
		s.forward(w, r, addr)
		return
	}
	var j *structs.Job
	s.with(func(e *Engine, cv ClusterView) { j, err = e.Register(time.Now(), cv, job) })
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.JobRegisterResponse{JobID: j.ID, Version: j.Version, Index: j.ModifyIndex})
	// the acknowledgement leaves first, then the job is placed (now, not
	// at the next tick): a client that submits one job after another
	// waits for the acknowledgement, and placing first delayed it on a
	// busy peer
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.wake()
}

func (s *Service) status(jobID string) (*JobStatus, error) {
	var st *JobStatus
	var err error
	s.with(func(e *Engine, _ ClusterView) { st, err = e.Job(jobID) })
	return st, err
}

func (s *Service) jobGet(_ http.ResponseWriter, _ *http.Request, id string) (any, error) {
	st, err := s.status(id)
	if err != nil {
		return nil, err
	}
	return st.Job, nil
}

func summary(allocs []*structs.Allocation) map[string]int {
	out := map[string]int{}
	for _, a := range allocs {
		if a.DesiredStatus == structs.AllocDesiredRun || !a.ClientTerminal() {
			out[a.ClientStatus]++
		}
	}
	return out
}

func (s *Service) jobStatus(_ http.ResponseWriter, _ *http.Request, id string) (any, error) {
	st, err := s.status(id)
	if err != nil {
		return nil, err
	}
	return &api.JobStatusResponse{Job: st.Job, Allocations: st.Allocations, Summary: summary(st.Allocations), PlacementFailure: st.Failure}, nil
}

func (s *Service) jobAllocs(_ http.ResponseWriter, _ *http.Request, id string) (any, error) {
	st, err := s.status(id)
	if err != nil {
		return nil, err
	}
	return st.Allocations, nil
}

func (s *Service) jobScale(_ http.ResponseWriter, r *http.Request, id string) (any, error) {
	var req api.JobScaleRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil {
		return nil, badRequest("invalid JSON body: %v", err)
	}
	if req.Count < 0 || req.Count > structs.MaxCount {
		return nil, badRequest("count %d: want 0..%d", req.Count, structs.MaxCount)
	}
	var j *structs.Job
	var err error
	s.with(func(e *Engine, cv ClusterView) { j, err = e.Scale(time.Now(), cv, id, req.Count) })
	s.wake() // place it now, not at the next tick
	if err != nil {
		return nil, err
	}
	return api.JobRegisterResponse{JobID: j.ID, Version: j.Version, Index: j.ModifyIndex}, nil
}

func (s *Service) jobStop(_ http.ResponseWriter, r *http.Request, id string) (any, error) {
	purge := r.URL.Query().Get("purge") == "true"
	var j *structs.Job
	var err error
	s.with(func(e *Engine, cv ClusterView) { j, err = e.StopJob(time.Now(), cv, id, purge) })
	if err != nil {
		return nil, err
	}
	return api.JobRegisterResponse{JobID: j.ID, Version: j.Version, Index: j.ModifyIndex}, nil
}

// owners returns the API addresses of every slot owner but this peer.
func (s *Service) ownerAddrs() (map[string]string, []string) {
	out := map[string]string{}
	var missing []string
	s.with(func(e *Engine, cv ClusterView) {
		loads := e.Loads()
		for o := range e.ownerRanges() {
			if o == e.ID() || cv.Failed[o] {
				continue
			}
			if l, ok := loads[o]; ok && l.HTTPAddr != "" {
				out[o] = l.HTTPAddr
			} else {
				missing = append(missing, o)
			}
		}
	})
	return out, missing
}

// fanout GETs path?local=true from every other owner and decodes each
// answer with add; it reports whether every owner answered.
func (s *Service) fanout(ctx context.Context, r *http.Request, add func(body io.Reader) error) bool {
	addrs, missing := s.ownerAddrs()
	full := len(missing) == 0
	ctx, cancel := context.WithTimeout(ctx, fanoutTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := r.URL.Query()
			q.Set("local", "true")
			u := s.scheme + "://" + addr + r.URL.Path + "?" + q.Encode()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return
			}
			if a := r.Header.Get("Authorization"); a != "" {
				req.Header.Set("Authorization", a) // the caller's user, checked by every owner
			}
			resp, err := s.client.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			mu.Lock()
			defer mu.Unlock()
			if ok {
				ok = add(io.LimitReader(resp.Body, 64<<20)) == nil
			}
			if resp != nil {
				resp.Body.Close()
			}
			if !ok {
				full = false
			}
		}()
	}
	wg.Wait()
	return full
}

func local(r *http.Request) bool { return r.URL.Query().Get("local") == "true" }

func (s *Service) jobList(w http.ResponseWriter, r *http.Request) {
	ns, err := requestNamespace(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var out []*api.JobListStub
	s.with(func(e *Engine, _ ClusterView) {
		for _, id := range e.Jobs() {
			st, err := e.Job(id)
			if err != nil {
				continue
			}
			j := st.Job
			if ns != structs.AllNamespaces && j.Namespace != ns && (j.Namespace != "" || ns != structs.DefaultNamespace) {
				continue
			}
			out = append(out, &api.JobListStub{ID: j.ID, Name: j.Name, Namespace: j.Namespace, Type: j.Type, Priority: j.Priority,
				Count: j.Count, Status: string(j.Status), Stop: j.Stop, Version: j.Version, Summary: summary(st.Allocations),
				SubmitTime: j.SubmitTime, ModifyIndex: j.ModifyIndex})
		}
	})
	if !local(r) {
		full := s.fanout(r.Context(), r, func(body io.Reader) error {
			var part []*api.JobListStub
			if err := json.NewDecoder(body).Decode(&part); err != nil {
				return err
			}
			out = append(out, part...)
			return nil
		})
		w.Header().Set(api.FullHeader, strconv.FormatBool(full))
	}
	slices.SortFunc(out, func(a, b *api.JobListStub) int { return strings.Compare(a.ID, b.ID) })
	if out == nil {
		out = []*api.JobListStub{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) localAllocs(ref string) []*structs.Allocation {
	var out []*structs.Allocation
	s.with(func(e *Engine, _ ClusterView) { out, _ = e.FindAlloc(ref) })
	return out
}

func (s *Service) allocList(w http.ResponseWriter, r *http.Request) {
	out := s.localAllocs("")
	for i, a := range out {
		out[i] = a.Stub()
	}
	if !local(r) {
		full := s.fanout(r.Context(), r, func(body io.Reader) error {
			var part []*structs.Allocation
			if err := json.NewDecoder(body).Decode(&part); err != nil {
				return err
			}
			out = append(out, part...)
			return nil
		})
		w.Header().Set(api.FullHeader, strconv.FormatBool(full))
	}
	slices.SortFunc(out, func(a, b *structs.Allocation) int { return strings.Compare(a.ID, b.ID) })
	if out == nil {
		out = []*structs.Allocation{}
	}
	writeJSON(w, http.StatusOK, out)
}

// findAlloc looks an allocation up by ID or unique prefix on every owner.
func (s *Service) findAlloc(r *http.Request, ref string) (*structs.Allocation, error) {
	if ref == "" {
		return nil, badRequest("allocation ID is required")
	}
	found := s.localAllocs(ref)
	if !local(r) {
		q := *r
		u := *r.URL
		u.Path = "/v1/allocation/" + url.PathEscape(ref)
		u.RawPath = ""
		q.URL = &u
		s.fanout(r.Context(), &q, func(body io.Reader) error {
			var a structs.Allocation
			if err := json.NewDecoder(body).Decode(&a); err != nil {
				return err
			}
			found = append(found, &a)
			return nil
		})
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("allocation %s: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, badRequest("allocation prefix %q is ambiguous: %d allocations match", ref, len(found))
}

func (s *Service) allocGet(w http.ResponseWriter, r *http.Request) {
	a, err := s.findAlloc(r, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// allocLogs serves a task's log from the peer that runs it.
func (s *Service) allocLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var lt *structs.Allocation
	var self string
	s.with(func(e *Engine, _ ClusterView) { lt, self = e.LocalTask(id), e.ID() })
	if lt == nil {
		if local(r) {
			writeError(w, fmt.Errorf("allocation %s does not run on this peer: %w", id, ErrNotFound))
			return
		}
		a, err := s.findAlloc(r, id)
		if err != nil {
			writeError(w, err)
			return
		}
		if a.NodeID == self {
			writeError(w, fmt.Errorf("allocation %s: its task is no longer on this peer: %w", id, ErrNotFound))
			return
		}
		var addr string
		s.with(func(e *Engine, _ ClusterView) { addr = e.Loads()[a.NodeID].HTTPAddr })
		if addr == "" {
			writeError(w, fmt.Errorf("%w: the API address of peer %s is not known", ErrClusterDown, a.NodeID))
			return
		}
		q := r.URL.Query()
		q.Set("local", "true")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/v1/allocation/" + url.PathEscape(a.ID) + "/logs"
		r2.URL.RawPath = ""
		r2.URL.RawQuery = q.Encode()
		s.forward(w, r2, addr)
		return
	}
	file := driver.StdoutFile
	switch r.URL.Query().Get("type") {
	case "", "stdout":
	case "stderr":
		file = driver.StderrFile
	default:
		writeError(w, badRequest("type must be \"stdout\" or \"stderr\""))
		return
	}
	follow := r.URL.Query().Get("follow") == "true"
	var offset int64
	if v := r.URL.Query().Get("offset"); v != "" {
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			writeError(w, badRequest("offset must be a byte count >= 0 (got %q)", v))
			return
		}
		offset = o
	}
	logs := tasklog.NewReader(s.runner.AllocDir(lt.ID), file, offset)
	defer func() { _ = logs.Close() }()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32*1024)
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		var dead bool
		s.with(func(e *Engine, _ ClusterView) {
			t := e.LocalTask(lt.ID)
			dead = t == nil || terminalStatus(t.ClientStatus)
		})
		for {
			n, err := logs.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				break // io.EOF: all written so far; other errors end the stream
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || dead {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// MemberInfo is one row of GET /v1/peer/members.
type MemberInfo struct {
	ID       string            `json:"id"`
	Addr     string            `json:"addr"`
	HTTPAddr string            `json:"http_addr,omitempty"`
	State    string            `json:"state"`
	Role     string            `json:"role"`
	Primary  string            `json:"primary,omitempty"`
	Capacity structs.Resources `json:"capacity"`
	Used     structs.Resources `json:"used"`
	Tasks    int               `json:"tasks"`
	Jobs     int               `json:"jobs,omitempty"` // jobs it owns (this peer only)
	Self     bool              `json:"self,omitempty"`
	// Exec counts what this peer's execution layer did since it
	// started (this peer only).
	Exec *Stats `json:"exec,omitempty"`
}

// members lists every peer: lifecycle state (down when the cluster
// agreed it failed, joining until its first load arrives), role,
// capacity, usage and task count from its last load.
func (s *Service) members(w http.ResponseWriter, _ *http.Request) {
	st, err := s.cluster.Status()
	if err != nil {
		writeError(w, fmt.Errorf("%w: %w", ErrClusterDown, err))
		return
	}
	var out []MemberInfo
	s.with(func(e *Engine, _ ClusterView) {
		loads := e.Loads()
		for _, ps := range st.Peers {
			m := MemberInfo{ID: string(ps.ID), Addr: ps.Addr, Role: "primary", Self: ps.ID == st.ID, State: StateJoining}
			if ps.Role != 1 { // peer.RolePrimary
				m.Role, m.Primary = "replica", string(ps.Primary)
			}
			if l, ok := loads[string(ps.ID)]; ok {
				m.HTTPAddr, m.State, m.Used, m.Tasks = l.HTTPAddr, l.State, l.Used, l.Tasks
				if l.Node != nil {
					m.Capacity = l.Node.Capacity
				}
			}
			if ps.Fail {
				m.State = StateDown
			}
			if m.Self {
				// this peer's own figures now, not as of its last load
				m.Jobs = len(e.Jobs())
				m.Used, m.Tasks = e.used()
				m.State = e.State()
				ex := s.stats(e)
				m.Exec = &ex
			}
			out = append(out, m)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// leave is POST /v1/peer/leave: it streams Leave's progress as text and
// ends with "left" or the error.
func (s *Service) leave(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w}
	// not the request's context: a client that goes away must not leave
	// the peer half gone
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := s.Leave(ctx, fw); err != nil {
		fmt.Fprintf(fw, "error: %v\n", err)
		return
	}
	fmt.Fprintf(fw, "left\n")
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
