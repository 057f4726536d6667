package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// maxBodyBytes bounds request bodies; a job document or a batch of alloc
// updates is far smaller.
const maxBodyBytes = 4 << 20

// handlerFunc is an API handler: it returns the value to encode as JSON, or
// an error that writeError turns into a status code and an ErrorResponse.
// A nil value and nil error means the handler wrote the response itself.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// httpError is an error with an HTTP status and, for validation, fields.
type httpError struct {
	code   int
	msg    string
	fields []structs.FieldError
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{code: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

// endpoint is one row of the API's route table.
type endpoint struct {
	method, path string
	// acl is who may call the route (acl_check.go); a route without one
	// is refused to everyone when ACLs are on.
	acl aclRule
	h   handlerFunc
	// raw, if set, serves the route instead of h, without wrap (its
	// rule is still checked).
	raw http.Handler
}

// endpoints is the API's route table (see api/endpoints.go and
// docs/api.md).
func (s *Server) endpoints() []endpoint {
	return []endpoint{
		{method: "PUT", path: "/v1/jobs", acl: nsCap(acl.CapSubmit), h: s.jobRegister},
		{method: "POST", path: "/v1/jobs/parse", acl: nsCap(acl.CapRead), h: s.jobParse},
		{method: "GET", path: "/v1/jobs", acl: nsCap(acl.CapRead), h: s.listed(s.jobList)},
		{method: "GET", path: "/v1/job/{id}", acl: nsCap(acl.CapRead), h: s.jobGet},
		{method: "GET", path: "/v1/job/{id}/status", acl: nsCap(acl.CapRead), h: s.jobStatus},
		{method: "GET", path: "/v1/job/{id}/allocations", acl: nsCap(acl.CapRead), h: s.jobAllocs},
		{method: "POST", path: "/v1/job/{id}/scale", acl: nsCap(acl.CapScale), h: s.jobScale},
		{method: "DELETE", path: "/v1/job/{id}", acl: nsCap(acl.CapSubmit), h: s.jobStop},
		{method: "POST", path: "/v1/job/{id}/plan", acl: nsCap(acl.CapSubmit), h: s.jobPlan},
		{method: "GET", path: "/v1/job/{id}/versions", acl: nsCap(acl.CapRead), h: s.jobVersions},
		{method: "POST", path: "/v1/job/{id}/revert", acl: nsCap(acl.CapSubmit), h: s.jobRevert},
		{method: "POST", path: "/v1/job/{id}/dispatch", acl: nsCap(acl.CapSubmit), h: s.jobDispatch},
		{method: "GET", path: "/v1/job/{id}/deployment", acl: nsCap(acl.CapRead), h: s.jobDeployment},

		{method: "GET", path: "/v1/deployments", acl: nsCap(acl.CapRead), h: s.deploymentList},
		{method: "GET", path: "/v1/deployment/{id}", acl: nsCap(acl.CapRead), h: s.deploymentGet},
		{method: "POST", path: "/v1/deployment/{id}/pause", acl: nsCap(acl.CapSubmit), h: s.deploymentAction(deployPause)},
		{method: "POST", path: "/v1/deployment/{id}/resume", acl: nsCap(acl.CapSubmit), h: s.deploymentAction(deployResume)},
		{method: "POST", path: "/v1/deployment/{id}/fail", acl: nsCap(acl.CapSubmit), h: s.deploymentAction(deployFail)},
		{method: "POST", path: "/v1/deployment/{id}/promote", acl: nsCap(acl.CapSubmit), h: s.deploymentAction(deployPromote)},

		{method: "POST", path: "/v1/node/register", acl: nodeRule(acl.LevelWrite), h: s.nodeRegister},
		{method: "POST", path: "/v1/node/{id}/heartbeat", acl: nodeRule(acl.LevelWrite), h: s.nodeHeartbeat},
		{method: "GET", path: "/v1/nodes", acl: nodeRule(acl.LevelRead), h: s.listed(s.nodeList)},
		{method: "GET", path: "/v1/nodes/usage", acl: nodeRule(acl.LevelRead), h: s.nodesUsage},
		{method: "GET", path: "/v1/node/{id}", acl: nodeRule(acl.LevelRead), h: s.nodeGet},
		{method: "POST", path: "/v1/node/{id}/drain", acl: nodeRule(acl.LevelWrite), h: s.nodeDrain},
		{method: "GET", path: "/v1/node/{id}/allocations", acl: nodeRule(acl.LevelRead), h: s.nodeAllocs},
		{method: "POST", path: "/v1/node/{id}/allocations", acl: nodeRule(acl.LevelWrite), h: s.nodeUpdateAllocs},
		{method: "POST", path: "/v1/nodes/allocations/watch", acl: nodeRule(acl.LevelRead), h: s.nodeAllocsWatch},
		{method: "POST", path: "/v1/nodes/allocations", acl: nodeRule(acl.LevelWrite), h: s.nodesUpdateAllocs},
		{method: "PUT", path: "/v1/nodes/heartbeat", acl: nodeRule(acl.LevelWrite), h: s.nodesHeartbeat},

		{method: "GET", path: "/v1/allocations", acl: nsCap(acl.CapRead), h: s.listed(s.allocList)},
		{method: "GET", path: "/v1/allocation/{id}", acl: nsCap(acl.CapRead), h: s.allocGet},
		{method: "GET", path: "/v1/allocation/{id}/logs", acl: nsCap(acl.CapLogs), h: s.allocLogs},
		{method: "POST", path: "/v1/allocation/{id}/exec", acl: nsCap(acl.CapAllocExec), h: s.allocExec},
		{method: "POST", path: "/v1/allocation/{id}/restart", acl: nsCap(acl.CapAllocLifecycle), h: s.allocRestart},
		{method: "POST", path: "/v1/allocation/{id}/signal", acl: nsCap(acl.CapAllocLifecycle), h: s.allocSignal},
		{method: "POST", path: "/v1/allocation/{id}/stop", acl: nsCap(acl.CapAllocLifecycle), h: s.allocStop},

		{method: "GET", path: "/v1/services", acl: nsCap(acl.CapRead), h: s.serviceList},
		{method: "GET", path: "/v1/service/{name}", acl: nsCap(acl.CapRead), h: s.serviceGet},
		// Every namespace's instances, for the agents' DNS: node read,
		// as agents already read the allocations they derive from.
		{method: "GET", path: "/v1/catalog", acl: nodeRule(acl.LevelRead), h: s.catalogGet},

		{method: "GET", path: "/v1/namespaces", acl: anyNamespace(acl.CapRead), h: s.namespaceList},
		{method: "PUT", path: "/v1/namespace/{name}", acl: operatorRule(acl.LevelWrite), h: s.namespaceApply},
		{method: "DELETE", path: "/v1/namespace/{name}", acl: operatorRule(acl.LevelWrite), h: s.namespaceDelete},

		{method: "POST", path: "/v1/acl/bootstrap", acl: public(), h: s.aclBootstrap},
		{method: "GET", path: "/v1/acl/policies", acl: management(), h: s.aclPolicyList},
		{method: "GET", path: "/v1/acl/policy/{name}", acl: management(), h: s.aclPolicyGet},
		{method: "PUT", path: "/v1/acl/policy/{name}", acl: management(), h: s.aclPolicyApply},
		{method: "DELETE", path: "/v1/acl/policy/{name}", acl: management(), h: s.aclPolicyDelete},
		{method: "GET", path: "/v1/acl/tokens", acl: management(), h: s.aclTokenList},
		{method: "POST", path: "/v1/acl/token", acl: management(), h: s.aclTokenCreate},
		{method: "GET", path: "/v1/acl/token/self", acl: anyToken(), h: s.aclTokenSelf},
		{method: "GET", path: "/v1/acl/token/{accessor}", acl: management(), h: s.aclTokenGet},
		{method: "DELETE", path: "/v1/acl/token/{accessor}", acl: management(), h: s.aclTokenDelete},

		{method: "GET", path: "/v1/status/leader", acl: public(), h: s.statusLeader},
		// Servers discover each other through status/self before any
		// token exists.
		{method: "GET", path: "/v1/status/self", acl: public(), h: s.statusSelf},
		{method: "GET", path: "/v1/operator/raft/configuration", acl: operatorRule(acl.LevelRead), h: s.raftConfiguration},
		{method: "DELETE", path: "/v1/operator/raft/peer", acl: operatorRule(acl.LevelWrite), h: s.raftRemovePeer},
		{method: "POST", path: "/v1/operator/raft/join", acl: operatorRule(acl.LevelWrite), h: s.raftJoin},
		{method: "GET", path: "/v1/operator/snapshot", acl: operatorRule(acl.LevelWrite), h: s.snapshotSave},
		{method: "PUT", path: "/v1/operator/snapshot", acl: operatorRule(acl.LevelWrite), h: s.snapshotRestore},
		{method: "GET", path: "/v1/scheduler/status", acl: operatorRule(acl.LevelRead), h: s.schedulerStatus},
		{method: "POST", path: "/v1/system/gc", acl: operatorRule(acl.LevelWrite), h: s.systemGC},
		// Each event is also checked against the token (eventAllowed).
		{method: "GET", path: "/v1/event/stream", acl: anyNamespace(acl.CapRead), h: s.eventStream},

		// The web UI (http_ui.go): its files, and / sends a browser there.
		// The pages hold nothing; what they show comes through the API.
		{method: "GET", path: "/ui/", acl: public(), raw: uiHandler()},
		{method: "GET", path: "/{$}", acl: public(), raw: rootRedirect()},

		// The framework API (two-level scheduling, http_frameworks.go).
		// Frameworks and their tasks live in the default namespace.
		{method: "POST", path: "/v1/frameworks/scheduler", acl: nsCap(acl.CapSubmit), h: s.frameworkCall},
		{method: "GET", path: "/v1/frameworks", acl: nsCap(acl.CapRead), h: s.frameworkList},
		{method: "GET", path: "/v1/framework/{id}", acl: nsCap(acl.CapRead), h: s.frameworkGet},

		{method: "GET", path: "/metrics", acl: operatorRule(acl.LevelRead), raw: promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})},
	}
}

// handler builds the API's mux from the route table. Every route is
// registered with its method, so the mux knows which methods a path
// takes; a request matching none falls to the catch-all, which answers
// 405 with Allow when the path exists under other methods, else 404.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	var methods []string
	for _, e := range s.endpoints() {
		pattern := e.method + " " + e.path
		if e.raw != nil {
			mux.Handle(pattern, s.guard(e.acl, e.raw))
		} else {
			mux.Handle(pattern, s.wrap(pattern, e.acl, e.h))
		}
		methods = append(methods, e.method)
		if e.method == http.MethodGet {
			methods = append(methods, http.MethodHead) // GET patterns serve HEAD
		}
	}
	slices.Sort(methods)
	methods = slices.Compact(methods)
	mux.Handle("/", s.wrap("/", public(), func(w http.ResponseWriter, r *http.Request) (any, error) {
		return nil, noRoute(mux, methods, w, r)
	}))
	return mux
}

// noRoute is the answer to a request no route matched: 405 naming the
// methods the path takes in Allow, or 404 for an unknown path. It runs
// only on this error path, so the mux is asked again once per method.
func noRoute(mux *http.ServeMux, methods []string, w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range methods {
		probe := r.WithContext(r.Context()) // a shallow copy
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return notFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	}
	list := strings.Join(allow, ", ")
	w.Header().Set("Allow", list)
	return &httpError{code: http.StatusMethodNotAllowed,
		msg: fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, list)}
}

// guard serves h once rule allows the request (the raw routes, which
// are always answered locally).
func (s *Server) guard(rule aclRule, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := s.authorize(rule, r)
		if err != nil {
			writeError(w, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// wrap turns a handlerFunc into an http.Handler that checks the route's
// access rule where the request is answered, encodes the result, maps
// errors to status codes and records latency per route.
func (s *Server) wrap(route string, rule aclRule, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			p := recover()
			abort := p == http.ErrAbortHandler //nolint:errorlint // the panic value itself, compared as net/http does
			if p != nil && !abort {
				// Never let one bad request take the server down.
				s.logger.Error("panic in API handler", "route", route, "panic", p)
				if !rec.wrote {
					writeError(rec, fmt.Errorf("internal error: %v", p))
				}
			}
			s.metrics.apiLatency.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
			if abort {
				// A deliberate abort, not a bug: the leader-forwarding
				// proxy lost its client or its upstream mid-stream (an
				// agent stopping, a server shutting down). net/http cuts
				// the connection, so the client sees a truncated answer,
				// and logs nothing.
				panic(p)
			}
		}()
		if err := checkRole(route, r); err != nil {
			writeError(rec, err)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// A copy: net/http looks at its own request's body after
			// the handler (to discard what is left unread).
			r = r.WithContext(r.Context())
			r.Body = newDeadlineBody(w, r.Body, s.cfg.BodyTimeout)
		}
		r, handled := s.route(route, rec, r, func(r *http.Request) (*http.Request, error) { return s.authorize(rule, r) })
		if handled {
			return // forwarded to the leader, or refused
		}
		out, err := h(rec, r)
		if err != nil {
			if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
				return // the client went away
			}
			writeError(rec, err)
			return
		}
		if out != nil {
			writeJSON(rec, http.StatusOK, out)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush lets log streams flush through the recorder.
func (r *statusRecorder) Flush() {
	r.wrote = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // error messages quote "<" and ">" rules
	_ = enc.Encode(v)
}

// writeError maps an error to a status code and an api.ErrorResponse.
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
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoLeader):
		code = http.StatusServiceUnavailable
		if errors.Is(err, ErrOutcomeUnknown) {
			w.Header().Set(api.OutcomeHeader, "unknown")
		}
	case errors.Is(err, state.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, state.ErrAmbiguous), errors.Is(err, state.ErrNamespaceLimit):
		code = http.StatusBadRequest
	case errors.Is(err, state.ErrNamespaceNotEmpty):
		code = http.StatusConflict
	}
	if code == http.StatusUnauthorized {
		// RFC 9110: a 401 names the scheme that would be accepted.
		w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
	}
	writeJSON(w, code, resp)
}

// decodeBody decodes a JSON body strictly: bounded size, no unknown
// fields, exactly one value.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var he *httpError
		switch {
		case errors.As(err, &he):
			return he // the body came too slowly (deadlineBody)
		case errors.As(err, &mbe):
			return &httpError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes)}
		case errors.Is(err, io.EOF):
			return badRequest("request body is empty; a JSON object is required")
		}
		return badRequest("invalid request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid request body: unexpected data after the JSON object")
	}
	return nil
}

// queryOptions reads ?index= and ?wait= of a blocking query.
func queryOptions(r *http.Request) (uint64, time.Duration, error) {
	q := r.URL.Query()
	var index uint64
	var wait time.Duration
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, badRequest("index: must be a non-negative integer (got %q)", v)
		}
		index = n
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, badRequest("wait: must be a duration like \"30s\" (got %q)", v)
		}
		wait = d
	}
	return index, wait, nil
}

// readFn is a read for a blocking query: it returns the result's index
// and the value to answer with.
type readFn func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error)

// blocking runs read as a blocking query and sets the index header.
func (s *Server) blocking(w http.ResponseWriter, r *http.Request, read readFn) (any, error) {
	minIndex, wait, err := queryOptions(r)
	if err != nil {
		return nil, err
	}
	var out any
	idx, err := s.state.BlockingQuery(r.Context(), minIndex, wait, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
		i, v, err := read(ws, snap)
		out = v
		return i, err
	})
	if err != nil {
		return nil, err
	}
	// Never answer index 0: a client passing it back would not block.
	if idx == 0 {
		idx = 1
	}
	w.Header().Set(api.IndexHeader, strconv.FormatUint(idx, 10))
	return out, nil
}

func (s *Server) statusLeader(w http.ResponseWriter, r *http.Request) (any, error) {
	addr, _ := s.raft.LeaderWithID()
	return &api.LeaderResponse{Leader: string(addr)}, nil
}

func (s *Server) schedulerStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	st := s.sched.Status()
	st.BlockedJobs, st.Unblocked = s.blocked.count()
	return &st, nil
}
