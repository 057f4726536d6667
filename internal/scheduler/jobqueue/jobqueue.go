// Package jobqueue is the pending-work queue every scheduling architecture
// uses: jobs ordered by priority (higher first), then by first enqueue, each
// job at most once. It is not safe for concurrent use; schedulers guard it
// with their own mutex.
package jobqueue

import "container/heap"

// Item is a job waiting to be scheduled.
type Item struct {
	JobID    string
	Priority int
	seq      uint64 // order of first enqueue, breaks priority ties
	index    int    // position in the heap
}

// Queue is a heap of Items.
type Queue struct {
	h     itemHeap
	byJob map[string]*Item
	seq   *uint64
}

// New returns an empty queue. seq numbers first enqueues; queues that share
// one counter keep a global first-come order among themselves (nil gives
// the queue its own).
func New(seq *uint64) *Queue {
	if seq == nil {
		seq = new(uint64)
	}
	return &Queue{byJob: map[string]*Item{}, seq: seq}
}

// Len is the number of queued jobs.
func (q *Queue) Len() int { return len(q.h) }

// Has reports whether the job is queued.
func (q *Queue) Has(jobID string) bool { _, ok := q.byJob[jobID]; return ok }

// Add queues a job, or updates the priority of a queued one (keeping its
// place among equals). It reports whether the job was newly queued.
func (q *Queue) Add(jobID string, priority int) bool {
	if it, ok := q.byJob[jobID]; ok {
		if it.Priority != priority {
			it.Priority = priority
			heap.Fix(&q.h, it.index)
		}
		return false
	}
	*q.seq++
	it := &Item{JobID: jobID, Priority: priority, seq: *q.seq}
	q.byJob[jobID] = it
	heap.Push(&q.h, it)
	return true
}

// Pop removes and returns the first job.
func (q *Queue) Pop() (*Item, bool) {
	if len(q.h) == 0 {
		return nil, false
	}
	it := heap.Pop(&q.h).(*Item)
	delete(q.byJob, it.JobID)
	return it, true
}

type itemHeap []*Item

func (h itemHeap) Len() int { return len(h) }

func (h itemHeap) Less(i, j int) bool {
	if h[i].Priority != h[j].Priority {
		return h[i].Priority > h[j].Priority
	}
	return h[i].seq < h[j].seq
}

func (h itemHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *itemHeap) Push(x any) {
	it := x.(*Item)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *itemHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return it
}
