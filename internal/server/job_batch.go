package server

import (
	"slices"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// maxJobBatch bounds the job writes in one Raft entry.
const maxJobBatch = 1024

// jobProposeDelay bounds how long a queued job write waits for a plan to
// share its Raft log write with. A registration is scheduled as soon as
// it is queued; the plan committer proposes every queued write just
// before its plans (flush), so a registration and the plan placing it
// reach the disk in one log write. Writes no plan follows (a scheduler
// busy with other jobs, nothing to place) are proposed by the job
// writer's own proposer after this long.
const jobProposeDelay = 2 * time.Millisecond

// jobWriter group-commits job writes (register, stop, purge): a write is
// versioned against the committed state plus the writes queued before it
// (so concurrent registrations of one job get consecutive versions), then
// queued, and the schedulers are told at once. Everything queued is
// proposed in one Raft entry, either by the plan committer just before it
// proposes plans (flush: a plan checked against a queued write follows
// that write in the log) or by the proposer goroutine once the oldest
// queued write is jobProposeDelay old. Entries are not waited for before
// the next is proposed (Raft orders them); a waiter per entry answers its
// writes once applied. Nothing is acknowledged before its entry is
// applied. If an entry fails, the writes not yet proposed fail too (they
// were versioned against it; their callers see an error and may retry);
// entries already proposed are answered by their own outcome.
//
// The proposer runs only while writes are queued (like updateBatcher).
type jobWriter struct {
	s *Server

	// proposeMu makes taking writes off the queue and proposing them one
	// step, so a flush returns only once everything queued before it is
	// in the Raft log.
	proposeMu sync.Mutex

	mu         sync.Mutex
	pending    map[string]*jobWrite // latest uncommitted (queued or proposed) write per job
	queue      []*jobWrite          // not yet proposed
	committing bool                 // the proposer runs
}

// jobWrite is one queued write.
type jobWrite struct {
	jobID  string
	w      structs.JobWrite
	after  *structs.Job // the job once written; nil when purged
	queued time.Time
	done   chan struct{}
	index  uint64
	err    error
}

// inLog returns the jobs whose latest write is queued or in the Raft log
// but not yet applied (nil for a purge), for the schedulers' view: a plan
// for such a job is proposed after the write (the plan committer flushes
// queued writes first), so Raft applies it after the write.
func (jw *jobWriter) inLog() map[string]*structs.Job {
	jw.mu.Lock()
	defer jw.mu.Unlock()
	if len(jw.pending) == 0 {
		return nil
	}
	out := make(map[string]*structs.Job, len(jw.pending))
	for id, w := range jw.pending {
		out[id] = w.after
	}
	return out
}

// current returns the job as the writes queued so far leave it: the last
// queued write's result, else the committed job. Call with mu held.
func (jw *jobWriter) current(id string) *structs.Job {
	if w, ok := jw.pending[id]; ok {
		return w.after
	}
	return jw.s.state.Snapshot().JobByID(id)
}

// write runs decide with the job's current version (nil if none) under the
// lock; decide returns the write to queue and the job it leaves (or
// ok=false to write nothing). Once the write is queued (and in the
// schedulers' view) write calls queued, then waits for the commit.
func (jw *jobWriter) write(id string, decide func(cur *structs.Job) (w structs.JobWrite, after *structs.Job, ok bool), queued func()) (*jobWrite, bool) {
	jw.mu.Lock()
	w, after, ok := decide(jw.current(id))
	if !ok {
		jw.mu.Unlock()
		return nil, false
	}
	jwr := &jobWrite{jobID: id, w: w, after: after, queued: time.Now(), done: make(chan struct{})}
	if jw.pending == nil {
		jw.pending = map[string]*jobWrite{}
	}
	jw.pending[id] = jwr
	jw.queue = append(jw.queue, jwr)
	if !jw.committing {
		jw.committing = true
		jw.s.wg.Add(1)
		go jw.commitLoop()
	}
	jw.mu.Unlock()
	if queued != nil {
		queued()
	}
	<-jwr.done
	return jwr, true
}

// flush proposes every queued write now and returns once they, and any
// the proposer took off the queue before, are in the Raft log. The plan
// committer calls it before proposing plans, which may have been checked
// against them. (A write off the queue is not yet in the log until its
// proposer returns from raftPropose: flush waits for it through
// proposeMu.)
func (jw *jobWriter) flush() {
	jw.proposeQueued()
}

// commitLoop proposes queued writes once the oldest has waited
// jobProposeDelay for a flush, until nothing is queued.
func (jw *jobWriter) commitLoop() {
	defer jw.s.wg.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		jw.mu.Lock()
		if len(jw.queue) == 0 {
			jw.committing = false
			jw.mu.Unlock()
			return
		}
		wait := jobProposeDelay - time.Since(jw.queue[0].queued)
		jw.mu.Unlock()
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-jw.s.shutdownCh:
			}
			continue
		}
		jw.proposeQueued()
	}
}

// proposeQueued proposes everything queued, maxJobBatch writes per entry,
// and starts a waiter per entry.
func (jw *jobWriter) proposeQueued() {
	jw.proposeMu.Lock()
	defer jw.proposeMu.Unlock()
	for {
		jw.mu.Lock()
		n := min(len(jw.queue), maxJobBatch)
		if n == 0 {
			jw.mu.Unlock()
			return
		}
		batch := slices.Clone(jw.queue[:n])
		jw.queue = slices.Delete(jw.queue, 0, n)
		jw.mu.Unlock()

		// No timeout: an entry must not give up waiting to enter the log
		// while a plan proposed after it gets in.
		var wait func() (uint64, any, error)
		switch w := batch[0].w; {
		case len(batch) > 1:
			writes := make([]structs.JobWrite, len(batch))
			for i, b := range batch {
				writes[i] = b.w
			}
			wait = jw.s.raftPropose(structs.JobBatchRequestType, &structs.JobBatchRequest{Writes: writes}, 0)
		case w.Register != nil:
			wait = jw.s.raftPropose(structs.JobRegisterRequestType, w.Register, 0)
		default:
			wait = jw.s.raftPropose(structs.JobDeregisterRequestType, w.Deregister, 0)
		}
		jw.s.wg.Add(1)
		go func() {
			defer jw.s.wg.Done()
			index, _, err := wait()
			jw.settle(batch, index, err)
		}()
	}
}

// settle answers an entry's writes with its outcome.
func (jw *jobWriter) settle(batch []*jobWrite, index uint64, err error) {
	jw.mu.Lock()
	var failed []*jobWrite
	if err != nil {
		// Everything queued was versioned against this batch.
		failed = jw.queue
		jw.queue, jw.pending = nil, nil
	} else {
		for _, b := range batch {
			if jw.pending[b.jobID] == b {
				delete(jw.pending, b.jobID) // the store has it now
			}
		}
	}
	jw.mu.Unlock()
	for _, b := range batch {
		b.index, b.err = index, err
		close(b.done)
	}
	for _, b := range failed {
		b.err = err
		close(b.done)
	}
}
