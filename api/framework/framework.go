// Package framework is the Go SDK for gantry frameworks: second-level
// schedulers that receive resource offers from a gantry cluster running
// the two-level architecture (`gantry server --scheduler two-level`) and
// launch tasks on them, in the manner of Mesos frameworks.
//
// Write a Scheduler (embed Base for the events you ignore), then Run it:
//
//	type queue struct {
//		framework.Base
//		todo []string
//	}
//
//	func (q *queue) Offers(ctx context.Context, d *framework.Driver, offers []api.Offer) {
//		for _, o := range offers {
//			if len(q.todo) == 0 {
//				d.Decline(ctx, []string{o.ID}, time.Minute)
//				continue
//			}
//			task := api.TaskInfo{TaskID: fmt.Sprint("t", len(q.todo)), Driver: "exec",
//				Resources: api.Resources{CPU: 100, MemoryMB: 64},
//				Config:    map[string]any{"command": "/bin/sh", "args": []string{"-c", q.todo[0]}}}
//			d.Launch(ctx, o, []api.TaskInfo{task}, 0)
//			q.todo = q.todo[1:]
//		}
//	}
//
//	err := framework.Run(ctx, framework.Config{Client: c, Name: "queue"}, &queue{todo: cmds})
//
// Run subscribes, calls the Scheduler for each event on one goroutine (so
// it needs no locks of its own), acknowledges each status update once
// Update returns, and subscribes again with backoff when the stream
// breaks (a server restarts, the leader changes), as the same framework:
// its tasks keep running meanwhile, for up to its failover timeout.
// docs/frameworks.md is the tutorial; examples/frameworks/workqueue a
// complete framework.
package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// Config describes a framework and how it connects.
type Config struct {
	// Client talks to the cluster (required); give it every server's
	// address: any of them forwards to the leader.
	Client *api.Client
	// Name identifies the framework (required; unique in the cluster).
	Name string
	// Role is the role whose weight and quota the framework's share
	// counts under ("" = "*").
	Role string
	// FailoverTimeout is how long the framework's tasks outlive it while
	// it is disconnected (0 = they are killed as soon as it is away).
	FailoverTimeout time.Duration
	// ID subscribes as a framework registered before (after a restart:
	// persist Driver.FrameworkID() from Subscribed). "" = a new one.
	ID string
	// MinBackoff and MaxBackoff bound the wait between subscription
	// attempts (doubling, with jitter). Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the SDK's logs; nil = discard.
	Logger *slog.Logger
}

// Scheduler is what a framework does on each event. Run calls it on one
// goroutine, in order; calls should not block for long (while one runs,
// no other event is handled, and offers held too long are rescinded).
type Scheduler interface {
	// Subscribed: the framework is (again) subscribed as d.FrameworkID().
	// A framework that may have launched tasks before should reconcile
	// them here before it launches more.
	Subscribed(ctx context.Context, d *Driver)
	// Offers: new offers, one node's free resources each. Launch tasks on
	// them or decline them.
	Offers(ctx context.Context, d *Driver, offers []api.Offer)
	// Rescind: an offer is withdrawn (its node went away, it timed out).
	Rescind(ctx context.Context, d *Driver, offerID string)
	// Update: a task's new status; acknowledged once Update returns.
	Update(ctx context.Context, d *Driver, status api.TaskStatus)
	// Failure: a node running some of the framework's tasks is lost.
	Failure(ctx context.Context, d *Driver, agentID string)
	// Error: the cluster ends the subscription; the stream closes next.
	Error(ctx context.Context, d *Driver, message string)
}

// Base implements every Scheduler method as a no-op; embed it and
// override what the framework needs.
type Base struct{}

func (Base) Subscribed(context.Context, *Driver)             {}
func (Base) Offers(context.Context, *Driver, []api.Offer)    {}
func (Base) Rescind(context.Context, *Driver, string)        {}
func (Base) Update(context.Context, *Driver, api.TaskStatus) {}
func (Base) Failure(context.Context, *Driver, string)        {}
func (Base) Error(context.Context, *Driver, string)          {}

var _ Scheduler = Base{}

// ErrFatal wraps the errors Run returns instead of subscribing again:
// the cluster refused the framework for good (its name is taken, it was
// removed, the cluster does not run two-level scheduling, the call is
// invalid).
var ErrFatal = errors.New("framework refused")

// Run runs the framework until ctx ends (then it returns nil) or the
// cluster refuses it for good (an error wrapping ErrFatal). A broken
// stream, an unreachable cluster or a leader change only make it
// subscribe again, with backoff.
func Run(ctx context.Context, cfg Config, s Scheduler) error {
	if cfg.Client == nil || cfg.Name == "" || s == nil {
		return fmt.Errorf("%w: a client, a name and a scheduler are required", ErrFatal)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &runner{cfg: cfg, s: s, log: log, id: cfg.ID}
	backoff := cfg.MinBackoff
	for {
		subscribed, err := r.session(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopped on purpose: the stream's end is no error
		}
		if errors.Is(err, ErrFatal) {
			return err
		}
		if subscribed {
			backoff = cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter: servers restarting are not hit at once
		log.Warn("framework stream ended; subscribing again", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// runner is one Run's state across subscriptions.
type runner struct {
	cfg Config
	s   Scheduler
	log *slog.Logger
	id  string // the framework's ID once known
}

// session subscribes once and handles events until the stream ends. It
// reports whether the subscription was made.
func (r *runner) session(ctx context.Context) (bool, error) {
	info := api.FrameworkInfo{ID: r.id, Name: r.cfg.Name, Role: r.cfg.Role, FailoverTimeout: r.cfg.FailoverTimeout.Seconds()}
	stream, err := r.cfg.Client.SubscribeFramework(ctx, info)
	if err != nil {
		var ae *api.APIError
		if errors.As(err, &ae) {
			switch ae.StatusCode {
			case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusGone:
				return false, fmt.Errorf("%w: %w", ErrFatal, err)
			}
		}
		return false, err
	}
	defer func() { _ = stream.Close() }()
	events := make(chan *api.FrameworkEvent)
	errc := make(chan error, 1)
	go func() {
		defer close(events)
		for {
			ev, err := stream.Next()
			if err != nil {
				errc <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Until SUBSCRIBED says otherwise, expect a heartbeat within 45s.
	silence := 45 * time.Second
	watchdog := time.NewTimer(silence)
	defer watchdog.Stop()
	d := &Driver{c: r.cfg.Client, stream: stream.StreamID, id: stream.FrameworkID}
	subscribed := false
	for {
		select {
		case <-ctx.Done():
			_ = stream.Close()
			for range events { // let the reader end
			}
			return subscribed, ctx.Err()
		case <-watchdog.C:
			_ = stream.Close()
			for range events {
			}
			return subscribed, fmt.Errorf("no event for %s", silence)
		case ev, ok := <-events:
			if !ok {
				// The reader sends its error before it closes events,
				// or stops without one when ctx ends.
				var err error
				select {
				case err = <-errc:
				default:
					err = ctx.Err()
				}
				if errors.Is(err, io.EOF) {
					err = errors.New("the server closed the stream")
				}
				return subscribed, err
			}
			watchdog.Reset(silence)
			if ev.Type == structs.EventTypeSubscribed && ev.Subscribed != nil {
				subscribed = true
				d.id, r.id = ev.Subscribed.FrameworkID, ev.Subscribed.FrameworkID
				if hb := ev.Subscribed.HeartbeatIntervalSeconds; hb > 0 {
					silence = 3 * time.Duration(hb*float64(time.Second))
					watchdog.Reset(silence)
				}
			}
			r.dispatch(ctx, d, ev)
		}
	}
}

// dispatch calls the Scheduler for one event.
func (r *runner) dispatch(ctx context.Context, d *Driver, ev *api.FrameworkEvent) {
	s := r.s
	switch ev.Type {
	case structs.EventTypeSubscribed:
		r.log.Info("framework subscribed", "framework", r.cfg.Name, "id", d.id)
		s.Subscribed(ctx, d)
	case structs.EventTypeOffers:
		if ev.Offers != nil {
			s.Offers(ctx, d, ev.Offers.Offers)
		}
	case structs.EventTypeRescind:
		if ev.Rescind != nil {
			s.Rescind(ctx, d, ev.Rescind.OfferID)
		}
	case structs.EventTypeUpdate:
		if ev.Update == nil {
			return
		}
		s.Update(ctx, d, ev.Update.Status)
		if ev.Update.Status.UUID != "" {
			if err := d.Acknowledge(ctx, ev.Update.Status); err != nil && ctx.Err() == nil {
				r.log.Warn("acknowledging a status update", "task", ev.Update.Status.TaskID, "error", err)
			}
		}
	case structs.EventTypeFailure:
		if ev.Failure != nil {
			s.Failure(ctx, d, ev.Failure.AgentID)
		}
	case structs.EventTypeError:
		if ev.Error != nil {
			r.log.Warn("the cluster ends the subscription", "message", ev.Error.Message)
			s.Error(ctx, d, ev.Error.Message)
		}
	}
}
