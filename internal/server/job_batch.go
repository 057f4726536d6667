package server

import (
	"slices"
	"sync"

	"github.com/gantry-project/gantry/internal/structs"
)

// maxJobBatch bounds the job writes in one Raft entry.
const maxJobBatch = 1024

// jobWriter group-commits job writes (register, stop, purge): a write is
// versioned against the committed state plus the writes queued before it
// (so concurrent registrations of one job get consecutive versions), then
// queued; one committer goroutine proposes everything queued in one Raft
// entry while the next writes queue behind it. Nothing is acknowledged
// before its entry is applied. If an entry fails, the writes versioned
// against it fail too (their callers see an error and may retry).
//
// The committer runs only while writes are queued (like updateBatcher).
type jobWriter struct {
	s *Server

	mu         sync.Mutex
	pending    map[string]*jobWrite // latest uncommitted write per job
	proposed   map[string]*jobWrite // latest write per job in the Raft log, not yet applied
	queue      []*jobWrite          // not yet proposed
	committing bool
}

// jobWrite is one queued write.
type jobWrite struct {
	jobID string
	w     structs.JobWrite
	after *structs.Job // the job once written; nil when purged
	// proposed, when set, runs once the write is in the Raft log (before
	// it commits): the job can be scheduled from then on.
	proposed func()
	done     chan struct{}
	index    uint64
	err      error
}

// inLog returns the jobs whose latest write is in the Raft log but not yet
// applied (nil for a purge), for the schedulers' view: a plan for such a
// job is proposed after the write, so Raft applies it after the write.
func (jw *jobWriter) inLog() map[string]*structs.Job {
	jw.mu.Lock()
	defer jw.mu.Unlock()
	if len(jw.proposed) == 0 {
		return nil
	}
	out := make(map[string]*structs.Job, len(jw.proposed))
	for id, w := range jw.proposed {
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
// ok=false to write nothing). write then waits for the commit.
func (jw *jobWriter) write(id string, decide func(cur *structs.Job) (w structs.JobWrite, after *structs.Job, ok bool), proposed func()) (*jobWrite, bool) {
	jw.mu.Lock()
	w, after, ok := decide(jw.current(id))
	if !ok {
		jw.mu.Unlock()
		return nil, false
	}
	jwr := &jobWrite{jobID: id, w: w, after: after, proposed: proposed, done: make(chan struct{})}
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
	<-jwr.done
	return jwr, true
}

func (jw *jobWriter) commitLoop() {
	defer jw.s.wg.Done()
	for {
		jw.mu.Lock()
		if len(jw.queue) == 0 {
			jw.committing = false
			jw.mu.Unlock()
			return
		}
		n := min(len(jw.queue), maxJobBatch)
		batch := slices.Clone(jw.queue[:n])
		jw.queue = slices.Delete(jw.queue, 0, n)
		jw.mu.Unlock()

		// No timeout: an entry must not give up waiting to enter the log
		// while a plan proposed after it (the job is scheduled once this
		// returns) gets in.
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
		jw.mu.Lock()
		if jw.proposed == nil {
			jw.proposed = map[string]*jobWrite{}
		}
		for _, b := range batch {
			jw.proposed[b.jobID] = b
		}
		jw.mu.Unlock()
		for _, b := range batch {
			if b.proposed != nil {
				b.proposed()
			}
		}
		index, _, err := wait()

		jw.mu.Lock()
		var failed []*jobWrite
		for _, b := range batch {
			if jw.proposed[b.jobID] == b {
				delete(jw.proposed, b.jobID) // applied (or failed)
			}
		}
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
}
