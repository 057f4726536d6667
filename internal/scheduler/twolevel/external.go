package twolevel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/structs"
)

// External frameworks: registration, subscriptions and failover. A
// framework subscribes (SUBSCRIBE) and gets a Subscription: a bounded
// queue of events its HTTP stream writes out. When the stream ends the
// framework is disconnected: its offers are rescinded and its failover
// timer starts; if it subscribes again with its ID before the timer
// fires it keeps its tasks, else they are killed and the framework is
// removed. Its tasks keep running while it is away.

// Errors of the framework API; the server maps them to status codes.
var (
	// ErrFrameworkUnknown: no framework with that ID is registered here.
	ErrFrameworkUnknown = errors.New("unknown framework")
	// ErrFrameworkRemoved: the framework was torn down or its failover
	// timeout passed; it must subscribe as a new framework.
	ErrFrameworkRemoved = errors.New("framework was removed")
	// ErrNotSubscribed: the call names a framework that is not subscribed
	// now, or a stream that is not its current one.
	ErrNotSubscribed = errors.New("framework is not subscribed on this stream")
	// ErrFrameworkConflict: a SUBSCRIBE that clashes with a registered
	// framework (its name is taken, or it names a built-in framework).
	ErrFrameworkConflict = errors.New("framework conflicts with a registered one")
	// ErrTooMany: a limit on frameworks or tasks would be exceeded.
	ErrTooMany = errors.New("limit reached")
)

// extFramework is an external framework. Guarded by Scheduler.mu.
type extFramework struct {
	id, name, role  string
	failoverTimeout time.Duration
	sub             *Subscription // nil while disconnected
	disconnected    time.Time
	failover        jobqueue.Stopper
	tasks           map[string]*task // by task ID
	launched        uint64
}

// Subscription is one subscribed framework's stream of events. Events are
// queued without blocking; a subscriber that falls SubscriberBuffer events
// behind is dropped (Done closes, Reason says why) and must subscribe
// again.
type Subscription struct {
	FrameworkID string
	StreamID    string
	events      chan structs.FrameworkEvent
	done        chan struct{}
	once        sync.Once
	reason      string
	s           *Scheduler
}

// Events are the events to write out, in order.
func (sub *Subscription) Events() <-chan structs.FrameworkEvent { return sub.events }

// Done closes when the subscription ends (replaced, dropped, torn down,
// leadership lost). Events already queued may still be written.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }

// Reason says why the subscription ended ("" while it lasts).
func (sub *Subscription) Reason() string {
	select {
	case <-sub.done:
		return sub.reason
	default:
		return ""
	}
}

// Close ends the subscription from the stream's side (the client went
// away): the framework is disconnected and its failover timer starts.
func (sub *Subscription) Close() {
	s := sub.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fws[sub.FrameworkID]; f != nil && f.sub == sub {
		s.disconnectLocked(f, "framework disconnected")
	}
	sub.end("stream closed")
}

func (sub *Subscription) end(reason string) {
	sub.once.Do(func() {
		sub.reason = reason
		close(sub.done)
	})
}

// sendLocked queues an event for a subscribed framework, dropping the
// subscriber if its queue is full.
func (s *Scheduler) sendLocked(f *extFramework, ev structs.FrameworkEvent) {
	sub := f.sub
	if sub == nil {
		return
	}
	select {
	case sub.events <- ev:
	default:
		s.log.Warn("dropping a framework that does not read its events", "framework", f.name, "id", f.id, "buffer", cap(sub.events))
		s.disconnectLocked(f, "framework too slow")
		sub.end(fmt.Sprintf("dropped: more than %d events not read; subscribe again", cap(sub.events)))
	}
}

// Subscribe registers a framework, or reconnects one that subscribed
// before (info.ID set, or frameworkID), and returns its subscription, whose
// first event is SUBSCRIBED. A previous subscription of the framework
// ends. A framework ID this leader does not know is accepted as the
// framework's own (a new leader learns frameworks from their tasks and
// their subscriptions), unless it was removed.
func (s *Scheduler) Subscribe(info structs.FrameworkInfo) (*Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil, ErrNotRunning
	}
	if IsBuiltin(info.Name) {
		return nil, fmt.Errorf("%w: %q is a built-in framework's name", ErrFrameworkConflict, info.Name)
	}
	role := info.Role
	if role == "" {
		role = structs.DefaultRole
	}
	if info.ID != "" && s.removed.has(info.ID) {
		return nil, fmt.Errorf("%w: %s; subscribe without an ID to register anew", ErrFrameworkRemoved, info.ID)
	}
	if other := s.byName[info.Name]; other != nil && other.id != info.ID {
		return nil, fmt.Errorf("%w: name %q is taken by framework %s", ErrFrameworkConflict, info.Name, other.id)
	}
	f := s.fws[info.ID]
	if f == nil {
		if len(s.fws) >= s.cfg.MaxFrameworks {
			return nil, fmt.Errorf("%w: %d frameworks are registered", ErrTooMany, len(s.fws))
		}
		id := info.ID
		if id == "" {
			id = scheduler.NewID(s.rng)
		}
		f = &extFramework{id: id, name: info.Name, tasks: map[string]*task{}}
		s.fws[id] = f
	}
	if f.name != info.Name {
		delete(s.byName, f.name)
		f.name = info.Name
	}
	s.byName[f.name] = f
	f.role = role
	f.failoverTimeout = time.Duration(info.FailoverTimeout * float64(time.Second))
	if f.sub != nil {
		f.sub.end("the framework subscribed again on another stream")
	}
	if f.failover != nil {
		f.failover.Stop()
		f.failover = nil
	}
	sub := &Subscription{
		FrameworkID: f.id, StreamID: scheduler.NewID(s.rng), s: s,
		events: make(chan structs.FrameworkEvent, s.cfg.SubscriberBuffer),
		done:   make(chan struct{}),
	}
	f.sub, f.disconnected = sub, time.Time{}
	s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeSubscribed, Subscribed: &structs.EventSubscribed{
		FrameworkID: f.id, HeartbeatIntervalSeconds: s.cfg.HeartbeatInterval.Seconds(),
	}})
	// Updates it did not acknowledge are sent again.
	for _, t := range f.tasks {
		if t.unacked != nil {
			s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeUpdate, Update: &structs.EventUpdate{Status: *t.unacked}})
		}
	}
	s.alloc.AddFramework(f.id, f.name, f.role)
	s.flushLocked()
	s.poke()
	s.log.Info("framework subscribed", "framework", f.name, "id", f.id, "role", f.role, "failover_timeout", f.failoverTimeout)
	return sub, nil
}

// disconnectLocked marks a framework away: no offers (its outstanding
// ones are rescinded), and its tasks are killed unless it subscribes
// again within its failover timeout.
func (s *Scheduler) disconnectLocked(f *extFramework, reason string) {
	f.sub = nil
	f.disconnected = s.now()
	if s.alloc != nil {
		s.alloc.DeactivateFramework(f.id, reason)
		s.flushLocked()
	}
	s.armFailoverLocked(f)
	s.log.Info("framework disconnected", "framework", f.name, "id", f.id, "reason", reason, "failover_timeout", f.failoverTimeout)
}

func (s *Scheduler) armFailoverLocked(f *extFramework) {
	if f.failover != nil {
		f.failover.Stop()
	}
	ctx := s.runCtx
	f.failover = s.env.AfterFunc(f.failoverTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ctx.Err() != nil || s.fws[f.id] != f || f.sub != nil {
			return
		}
		s.teardownLocked(f, "failover timeout passed")
	})
}

// teardownLocked removes a framework and kills its tasks.
func (s *Scheduler) teardownLocked(f *extFramework, reason string) {
	if f.failover != nil {
		f.failover.Stop()
		f.failover = nil
	}
	if f.sub != nil {
		s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeError, Error: &structs.EventError{Message: "framework removed: " + reason}})
		f.sub.end("framework removed: " + reason)
		f.sub = nil
	}
	var jobs []string
	for _, t := range f.tasks {
		if !t.state.Terminal() {
			jobs = append(jobs, t.jobID)
		}
	}
	delete(s.fws, f.id)
	if s.byName[f.name] == f {
		delete(s.byName, f.name)
	}
	s.removed.add(f.id)
	for _, t := range f.tasks {
		s.forgetTaskLocked(t)
	}
	if s.alloc != nil {
		s.alloc.RemoveFramework(f.id, "framework removed")
		s.flushLocked()
	}
	if s.m != nil {
		s.m.dominantShare.DeleteLabelValues(f.name)
	}
	s.log.Warn("framework removed; killing its tasks", "framework", f.name, "id", f.id, "reason", reason, "tasks", len(jobs))
	s.killJobsLocked(jobs)
}

// killJobsLocked stops task jobs in the background (job writes wait for
// Raft: never under the lock).
func (s *Scheduler) killJobsLocked(jobs []string) {
	l, ctx := s.launcher, s.runCtx
	if len(jobs) == 0 || l == nil || ctx == nil {
		return
	}
	s.bg.Go(func() {
		for _, id := range jobs {
			if err := l.Stop(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Error("killing a task of a removed framework", "job", id, "error", err)
			}
		}
	})
}

// current returns the framework a call names if stream is its current
// subscription.
func (s *Scheduler) currentLocked(frameworkID, streamID string) (*extFramework, error) {
	if !s.running {
		return nil, ErrNotRunning
	}
	f := s.fws[frameworkID]
	switch {
	case f == nil && s.removed.has(frameworkID):
		return nil, fmt.Errorf("%w: %s", ErrFrameworkRemoved, frameworkID)
	case f == nil:
		return nil, fmt.Errorf("%w: %s (subscribe first)", ErrFrameworkUnknown, frameworkID)
	case f.sub == nil || f.sub.StreamID != streamID:
		return nil, fmt.Errorf("%w: framework %s, stream %q", ErrNotSubscribed, frameworkID, streamID)
	}
	return f, nil
}

// Call carries out a framework's call other than SUBSCRIBE and ACCEPT
// (Accept has its own method). streamID must be the framework's current
// subscription's.
func (s *Scheduler) Call(ctx context.Context, streamID string, c *structs.FrameworkCall) error {
	switch c.Type {
	case structs.CallTypeKill:
		return s.kill(ctx, streamID, c)
	case structs.CallTypeAccept:
		_, err := s.Accept(ctx, streamID, c)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.currentLocked(c.FrameworkID, streamID)
	if err != nil {
		return err
	}
	now := s.now()
	switch c.Type {
	case structs.CallTypeDecline:
		secs := c.Decline.Filters.Refuse()
		err = s.alloc.Decline(f.id, c.Decline.OfferIDs, time.Duration(secs*float64(time.Second)), now)
		if errors.Is(err, ErrOfferNotOutstanding) {
			err = nil // declining an offer that is gone changes nothing
		}
	case structs.CallTypeRevive:
		err = s.alloc.Revive(f.id)
	case structs.CallTypeSuppress:
		err = s.alloc.Suppress(f.id)
	case structs.CallTypeAcknowledge:
		s.acknowledgeLocked(f, c.Acknowledge)
	case structs.CallTypeReconcile:
		s.reconcileLocked(f, c.Reconcile)
	case structs.CallTypeTeardown:
		s.teardownLocked(f, "torn down by the framework")
		return nil
	default:
		return fmt.Errorf("%w: call %s is not handled here", structs.ErrInvalidCall, c.Type)
	}
	s.flushLocked()
	s.poke()
	return err
}
