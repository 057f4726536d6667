package jobqueue

import (
	"sync"
	"time"
)

// Stopper is what a timer gives back; time.Timer satisfies it.
type Stopper interface{ Stop() bool }

// Retries re-enqueues jobs later (rescheduling delays, backoff after an
// error or a conflict), keeping only the earliest pending retry per job.
// Every architecture uses it with its own Enqueue.
type Retries struct {
	// AfterFunc starts timers; tests replace it to fire them by hand.
	AfterFunc func(d time.Duration, f func()) Stopper
	now       func() time.Time
	enqueue   func(jobID string, priority int)

	mu     sync.Mutex
	timers map[string]retry
}

type retry struct {
	at time.Time
	t  Stopper
}

// NewRetries returns retries that call enqueue when a job's time comes.
func NewRetries(now func() time.Time, enqueue func(jobID string, priority int)) *Retries {
	return &Retries{
		AfterFunc: func(d time.Duration, f func()) Stopper { return time.AfterFunc(d, f) },
		now:       now,
		enqueue:   enqueue,
		timers:    map[string]retry{},
	}
}

// After re-enqueues the job at time at, unless an earlier retry of it is
// already pending (a later one is replaced).
func (r *Retries) After(jobID string, priority int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.timers[jobID]; ok {
		if !at.Before(old.at) {
			return
		}
		old.t.Stop()
	}
	e := retry{at: at}
	e.t = r.AfterFunc(at.Sub(r.now()), func() {
		r.mu.Lock()
		if cur, ok := r.timers[jobID]; ok && cur.at.Equal(at) {
			delete(r.timers, jobID)
		}
		r.mu.Unlock()
		r.enqueue(jobID, priority)
	})
	r.timers[jobID] = e
}

// Stop cancels every pending retry.
func (r *Retries) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.timers {
		e.t.Stop()
		delete(r.timers, id)
	}
}
