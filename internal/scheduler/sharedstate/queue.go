package sharedstate

import "container/heap"

// item is a job waiting to be scheduled.
type item struct {
	jobID    string
	priority int
	seq      uint64 // order of first enqueue, breaks priority ties
	index    int    // position in the heap
}

// jobQueue is one pool's heap of jobs: higher priority first, then first
// enqueued. It is guarded by the Scheduler's mutex.
type jobQueue struct {
	items []*item
	byJob map[string]*item
	seq   *uint64 // shared by all pools so ties keep global order
}

func newJobQueue(seq *uint64) *jobQueue { return &jobQueue{byJob: map[string]*item{}, seq: seq} }

func (q *jobQueue) Len() int { return len(q.items) }

func (q *jobQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.seq < b.seq
}

func (q *jobQueue) Swap(i, j int) {
	q.items[i], q.items[j] = q.items[j], q.items[i]
	q.items[i].index, q.items[j].index = i, j
}

func (q *jobQueue) Push(x any) {
	it := x.(*item)
	it.index = len(q.items)
	q.items = append(q.items, it)
}

func (q *jobQueue) Pop() any {
	n := len(q.items)
	it := q.items[n-1]
	q.items[n-1] = nil
	q.items = q.items[:n-1]
	return it
}

// has reports whether the job is queued here.
func (q *jobQueue) has(jobID string) bool { _, ok := q.byJob[jobID]; return ok }

// add queues a job, or updates the priority of a queued one.
func (q *jobQueue) add(jobID string, priority int) {
	if it, ok := q.byJob[jobID]; ok {
		if it.priority != priority {
			it.priority = priority
			heap.Fix(q, it.index)
		}
		return
	}
	*q.seq++
	it := &item{jobID: jobID, priority: priority, seq: *q.seq}
	q.byJob[jobID] = it
	heap.Push(q, it)
}

// pop removes the first job.
func (q *jobQueue) pop() (*item, bool) {
	if len(q.items) == 0 {
		return nil, false
	}
	it := heap.Pop(q).(*item)
	delete(q.byJob, it.jobID)
	return it, true
}
