package agent

import (
	"context"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// updater batches allocation status reports: it waits a short window after
// the first change so that bursts (many tasks starting at once) go out as
// one request, keeps only the latest report per allocation, and retries
// until the server acknowledges.
type updater struct {
	window  time.Duration
	send    func(ctx context.Context, ups []*structs.AllocClientUpdate) error
	now     func() time.Time
	observe func(time.Duration)
	// permanent reports errors that a retry cannot fix (nil: retry all).
	permanent func(error) bool

	mu      sync.Mutex
	pending map[string]*pendingUpdate
	kick    chan struct{}
}

type pendingUpdate struct {
	up     *structs.AllocClientUpdate
	queued time.Time // first queued, for the latency figure
}

func newUpdater(window time.Duration, now func() time.Time, send func(context.Context, []*structs.AllocClientUpdate) error, observe func(time.Duration)) *updater {
	return &updater{window: window, send: send, now: now, observe: observe,
		pending: map[string]*pendingUpdate{}, kick: make(chan struct{}, 1)}
}

// push queues a report; a newer report of the same allocation replaces an
// unsent older one.
func (u *updater) push(up *structs.AllocClientUpdate) {
	u.mu.Lock()
	if p, ok := u.pending[up.ID]; ok {
		p.up = up
	} else {
		u.pending[up.ID] = &pendingUpdate{up: up, queued: u.now()}
	}
	u.mu.Unlock()
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

func (u *updater) take() map[string]*pendingUpdate {
	u.mu.Lock()
	defer u.mu.Unlock()
	batch := u.pending
	u.pending = map[string]*pendingUpdate{}
	return batch
}

// requeue puts back reports that were not acknowledged, unless a newer one
// was queued meanwhile.
func (u *updater) requeue(batch map[string]*pendingUpdate) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, p := range batch {
		if _, newer := u.pending[id]; !newer {
			u.pending[id] = p
		}
	}
}

// run sends batches until ctx is done. ready is closed once the node is
// registered (reports of an unknown node would be refused).
func (u *updater) run(ctx context.Context, ready <-chan struct{}, onError func(error)) {
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		select {
		case <-u.kick:
		case <-ctx.Done():
			return
		}
		if !sleepCtx(ctx, u.window) {
			return
		}
		batch := u.take()
		if len(batch) == 0 {
			continue
		}
		ups := make([]*structs.AllocClientUpdate, 0, len(batch))
		for _, p := range batch {
			ups = append(ups, p.up)
		}
		if err := u.send(ctx, ups); err != nil {
			if ctx.Err() != nil {
				u.requeue(batch)
				return
			}
			onError(err)
			if u.permanent != nil && u.permanent(err) {
				// The server refused the reports themselves: sending them
				// again cannot succeed, and must not hold up newer ones.
				continue
			}
			u.requeue(batch)
			if !sleepCtx(ctx, backoff.next()) {
				return
			}
			u.poke()
			continue
		}
		backoff.reset()
		now := u.now()
		for _, p := range batch {
			u.observe(now.Sub(p.queued))
		}
	}
}

func (u *updater) poke() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
