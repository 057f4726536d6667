package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Read consistency and forwarding (see docs/api.md):
//
//   - Writes (every method but GET) run on the leader. Any other server
//     forwards them to the leader's API, transparently.
//   - Reads are consistent by default: they are forwarded to the leader,
//     which confirms it still leads (raft VerifyLeader: a round of
//     heartbeats to a majority) before answering from its state. A deposed
//     leader cut off from the majority therefore answers 503, never old
//     data.
//   - `?stale` reads are answered from the local state of whichever server
//     receives them; they may lag the leader by the replication delay (or
//     by the length of a partition).
//   - A few endpoints are always local: /v1/status/*, task logs (proxied to
//     the agent that runs the task) and /metrics.
//
// A forwarded request carries api.ForwardHopsHeader; a server refuses to
// forward a request that has already made maxForwardHops hops (servers
// that disagree about the leader for a moment must not loop).

const maxForwardHops = 2

type forwardKey struct{}

// routeClass says where a route runs.
type routeClass int

const (
	routeLeader routeClass = iota // writes and consistent reads
	routeLocal                    // always answered by the receiving server
)

var localRoutes = map[string]bool{
	"GET /v1/status/leader":        true,
	"GET /v1/status/self":          true,
	"GET /v1/allocation/{id}/logs": true,
	// The task's agent answers these; any server relays them.
	"POST /v1/allocation/{id}/exec":    true,
	"POST /v1/allocation/{id}/restart": true,
	"POST /v1/allocation/{id}/signal":  true,
	"GET /v1/event/stream":             true,
	"POST /v1/jobs/parse":              true,
	"/":                                true,
}

func classify(route string, r *http.Request) routeClass {
	if localRoutes[route] {
		return routeLocal
	}
	if r.Method == http.MethodGet && isStale(r) {
		return routeLocal
	}
	return routeLeader
}

// isStale reports whether a read allows a stale answer (?stale or
// ?stale=true).
func isStale(r *http.Request) bool {
	q := r.URL.Query()
	if !q.Has("stale") {
		return false
	}
	v := q.Get("stale")
	return v == "" || v == "true" || v == "1"
}

// newForwarder builds the reverse proxy to the leader. The target is put
// in the request context by forward.
func (s *Server) newForwarder() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(forwardKey{}).(*url.URL)
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Set(api.ForwardHopsHeader, strconv.Itoa(forwardHops(pr.In)+1))
			setForwardedRole(pr.In, pr.Out)
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     time.Minute,
			TLSClientConfig:     s.tlsClient(tlsutil.RoleServer),
		},
		// Blocking queries answer once; flush at the end is enough.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.metrics.forwarded.WithLabelValues("error").Inc()
			if r.Context().Err() != nil {
				return
			}
			// The leader was lost mid-request: a write may or may not
			// have been applied, and sending it again elsewhere could
			// apply it twice (a register after a stop that came
			// between), so the client is told the outcome is unknown
			// unless the request never reached the leader.
			var op *net.OpError
			if r.Method != http.MethodGet && (!errors.As(err, &op) || op.Op != "dial") {
				err = fmt.Errorf("%w (%w)", ErrOutcomeUnknown, err)
			}
			writeError(w, fmt.Errorf("forwarding to the leader: %w (%w)", ErrNoLeader, err))
		},
	}
}

func forwardHops(r *http.Request) int {
	n, err := strconv.Atoi(r.Header.Get(api.ForwardHopsHeader))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// route decides whether this server answers r itself, and if so runs
// check (the route's access rule) first: a request is checked where it
// is answered, and a refused one costs no leadership round. It returns
// the request to serve (check may attach the caller's identity), or true
// when it has already answered (forwarded, or refused).
func (s *Server) route(route string, w http.ResponseWriter, r *http.Request, check func(*http.Request) (*http.Request, error)) (*http.Request, bool) {
	if classify(route, r) == routeLocal {
		r, err := check(r)
		if err != nil {
			writeError(w, err)
			return nil, true
		}
		return r, false
	}
	if s.Leader() {
		// A new leader answers only after its barrier: its state then
		// holds every entry committed by earlier leaders.
		if !s.leaderReady.Load() {
			writeError(w, fmt.Errorf("%w: this server was just elected and is catching up", ErrNotLeader))
			return nil, true
		}
		r, err := check(r)
		if err != nil {
			writeError(w, err)
			return nil, true
		}
		if r.Method == http.MethodGet {
			if err := s.raft.VerifyLeader().Error(); err != nil {
				writeError(w, raftErr("verifying leadership for a consistent read", err))
				return nil, true
			}
		}
		return r, false
	}
	if hops := forwardHops(r); hops >= maxForwardHops {
		writeError(w, fmt.Errorf("%w: request already forwarded %d times", ErrNoLeader, hops))
		return nil, true
	}
	addr, err := s.leaderHTTPAddr()
	if err != nil {
		writeError(w, err)
		return nil, true
	}
	target := &url.URL{Scheme: s.scheme(), Host: addr}
	s.metrics.forwarded.WithLabelValues("forwarded").Inc()
	s.forwarder.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, target)))
	return nil, true
}
