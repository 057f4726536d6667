package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler/twolevel"
	"github.com/gantry-project/gantry/internal/structs"
)

// The framework API (two-level scheduling), shaped like the Mesos v1
// scheduler API: every call is a POST of a structs.FrameworkCall to one
// endpoint; SUBSCRIBE answers with a stream of events, one JSON object a
// line (NDJSON), for as long as the framework stays subscribed; ACCEPT
// answers with each task's launch status; other calls answer 202. Calls
// must carry the subscription's stream ID (api.StreamIDHeader). Every
// route runs on the leader (others forward, streams included), where the
// allocator is.

// streamWriteTimeout bounds one write of the event stream: a framework
// that stops reading is cut off (its events are not queued without bound:
// twolevel drops it once its queue is full).
const streamWriteTimeout = 10 * time.Second

// twoLevel returns the two-level architecture, or an error naming the one
// this server runs.
func (s *Server) twoLevel() (*twolevel.Scheduler, error) {
	tl, ok := s.sched.(*twolevel.Scheduler)
	if !ok {
		return nil, &httpError{code: http.StatusBadRequest,
			msg: fmt.Sprintf("frameworks need the two-level scheduler (gantry server --scheduler two-level); this server runs %s", s.cfg.Scheduler.Architecture)}
	}
	return tl, nil
}

// frameworkError maps the framework API's errors to status codes.
func frameworkError(err error) error {
	code := 0
	switch {
	case errors.Is(err, twolevel.ErrNotRunning):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, structs.ErrInvalidCall):
		var ce *structs.CallError
		if errors.As(err, &ce) {
			return &httpError{code: http.StatusBadRequest, msg: err.Error(), fields: ce.Fields}
		}
		code = http.StatusBadRequest
	case errors.Is(err, twolevel.ErrFrameworkUnknown):
		code = http.StatusNotFound
	case errors.Is(err, twolevel.ErrFrameworkRemoved):
		code = http.StatusGone
	case errors.Is(err, twolevel.ErrNotSubscribed):
		code = http.StatusForbidden
	case errors.Is(err, twolevel.ErrFrameworkConflict):
		code = http.StatusConflict
	case errors.Is(err, twolevel.ErrTooMany):
		code = http.StatusTooManyRequests
	default:
		return err
	}
	return &httpError{code: code, msg: err.Error()}
}

// frameworkCall is POST /v1/frameworks/scheduler.
func (s *Server) frameworkCall(w http.ResponseWriter, r *http.Request) (any, error) {
	tl, err := s.twoLevel()
	if err != nil {
		return nil, err
	}
	if err := frameworkNamespace(r); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, structs.MaxCallBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		var he *httpError
		switch {
		case errors.As(err, &he):
			return nil, he
		case errors.As(err, &mbe):
			return nil, &httpError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("call is larger than %d bytes", structs.MaxCallBytes)}
		}
		return nil, badRequest("reading the call: %v", err)
	}
	call, err := structs.DecodeFrameworkCall(body)
	if err != nil {
		return nil, frameworkError(err)
	}
	stream := r.Header.Get(api.StreamIDHeader)
	switch call.Type {
	case structs.CallTypeSubscribe:
		return nil, s.frameworkStream(w, r, tl, call)
	case structs.CallTypeAccept:
		tasks, err := tl.Accept(r.Context(), stream, call)
		if err != nil {
			return nil, frameworkError(err)
		}
		return &structs.AcceptResponse{Tasks: tasks}, nil
	}
	if err := tl.Call(r.Context(), stream, call); err != nil {
		return nil, frameworkError(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "{}\n")
	return nil, nil
}

// frameworkStream serves a SUBSCRIBE: the framework's events, one JSON
// object a line, a HEARTBEAT when nothing else was sent for the interval,
// until the client goes away or the subscription ends (the last line is
// then an ERROR event saying why).
func (s *Server) frameworkStream(w http.ResponseWriter, r *http.Request, tl *twolevel.Scheduler, call *structs.FrameworkCall) error {
	info := call.Subscribe.FrameworkInfo
	if info.ID == "" {
		info.ID = call.FrameworkID
	}
	sub, err := tl.Subscribe(info)
	if err != nil {
		return frameworkError(err)
	}
	defer sub.Close()
	w.Header().Set("Content-Type", api.FrameworkStreamContentType)
	w.Header().Set(api.StreamIDHeader, sub.StreamID)
	w.Header().Set(api.FrameworkIDHeader, sub.FrameworkID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	write := func(ev structs.FrameworkEvent) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return enc.Encode(ev)
	}
	flush := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return rc.Flush()
	}
	hb := time.NewTicker(tl.HeartbeatInterval())
	defer hb.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case ev := <-sub.Events():
			if err := write(ev); err != nil {
				return nil
			}
			// Everything queued goes out with one flush.
			for more := true; more; {
				select {
				case ev := <-sub.Events():
					if err := write(ev); err != nil {
						return nil
					}
				default:
					more = false
				}
			}
			if flush() != nil {
				return nil
			}
		case <-sub.Done():
			for {
				select {
				case ev := <-sub.Events():
					if write(ev) != nil {
						return nil
					}
					continue
				default:
				}
				break
			}
			_ = write(structs.FrameworkEvent{Type: structs.EventTypeError, Error: &structs.EventError{Message: sub.Reason()}})
			_ = flush()
			return nil
		case <-hb.C:
			if write(structs.FrameworkEvent{Type: structs.EventTypeHeartbeat}) != nil || flush() != nil {
				return nil
			}
		}
	}
}

// frameworkList is GET /v1/frameworks.
func (s *Server) frameworkList(w http.ResponseWriter, r *http.Request) (any, error) {
	tl, err := s.twoLevel()
	if err != nil {
		return nil, err
	}
	if err := frameworkNamespace(r); err != nil {
		return nil, err
	}
	if !s.leaderReady.Load() {
		return nil, fmt.Errorf("%w: frameworks are known to the leader only (drop ?stale)", ErrNotLeader)
	}
	return tl.Frameworks(), nil
}

// frameworkGet is GET /v1/framework/{id}: one framework, by ID or name,
// with its tasks.
func (s *Server) frameworkGet(w http.ResponseWriter, r *http.Request) (any, error) {
	tl, err := s.twoLevel()
	if err != nil {
		return nil, err
	}
	if err := frameworkNamespace(r); err != nil {
		return nil, err
	}
	if !s.leaderReady.Load() {
		return nil, fmt.Errorf("%w: frameworks are known to the leader only (drop ?stale)", ErrNotLeader)
	}
	d, err := tl.FrameworkDetail(r.PathValue("id"))
	if err != nil {
		return nil, frameworkError(err)
	}
	return d, nil
}

// frameworkNamespace refuses a framework call for a namespace other than
// the default: frameworks and the jobs of their tasks live there, so the
// access check (the request's namespace) must be for it.
func frameworkNamespace(r *http.Request) error {
	ns, err := requestNamespace(r)
	if err != nil {
		return err
	}
	if ns != structs.DefaultNamespace {
		return badRequest("namespace: frameworks and their tasks live in namespace %q, not %q", structs.DefaultNamespace, ns)
	}
	return nil
}
