package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestConcurrentRegistrationsGetConsecutiveVersions: 24 clients register
// the same job at once, each with another CPU ask (a spec change); they
// share Raft entries, and the versions handed out are exactly 1..24, the
// stored job carries the last, and a re-registration of an unchanged spec
// keeps its version.
func TestConcurrentRegistrationsGetConsecutiveVersions(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	const n = 24
	var mu sync.Mutex
	var versions []uint64
	indexes := map[uint64]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			job := mockJob("web", 1)
			job.Resources.CPU = int64(100 + i)
			res, err := c.RegisterJob(bg, job)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			versions = append(versions, res.Version)
			indexes[res.Index]++
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(versions)
	for i, v := range versions {
		if v != uint64(i+1) {
			t.Fatalf("versions %v, want 1..%d each once", versions, n)
		}
	}
	j := s.State().Snapshot().JobByID("web")
	if j == nil || j.Version != n {
		t.Fatalf("stored job %+v, want version %d", j, n)
	}
	t.Logf("%d registrations in %d Raft entries", n, len(indexes))
	// Same spec again: same version.
	again := mockJob("web", 3)
	again.Resources.CPU = j.Resources.CPU
	res, err := c.RegisterJob(bg, again)
	if err != nil || res.Version != n {
		t.Fatalf("re-registration: %+v, %v; want version %d", res, err, n)
	}
}

// TestJobWritesOrderedWithQueuedOnes: a stop queued behind a registration
// of a new job sees that job (not a 404), a purge makes the next stop a
// 404, and the job writer holds nothing once idle.
func TestJobWritesOrderedWithQueuedOnes(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	// Hold the proposer and flushes back so the writes queue behind each
	// other.
	s.jobs.proposeMu.Lock()
	s.jobs.mu.Lock()
	s.jobs.committing = true
	s.jobs.mu.Unlock()
	type out struct {
		res *api.JobRegisterResponse
		err error
	}
	reg, stopped := make(chan out, 1), make(chan out, 1)
	go func() {
		r, err := s.registerJob(mockJobStruct("batch", 2))
		reg <- out{r, err}
	}()
	waitFor(t, 5*time.Second, "the registration to queue", func() (bool, string) {
		s.jobs.mu.Lock()
		defer s.jobs.mu.Unlock()
		return len(s.jobs.queue) == 1, fmt.Sprint(len(s.jobs.queue))
	})
	go func() {
		r, err := c.StopJob(bg, "batch", false)
		stopped <- out{r, err}
	}()
	waitFor(t, 5*time.Second, "the stop to queue", func() (bool, string) {
		s.jobs.mu.Lock()
		defer s.jobs.mu.Unlock()
		return len(s.jobs.queue) == 2, fmt.Sprint(len(s.jobs.queue))
	})
	s.jobs.proposeMu.Unlock()
	s.wg.Add(1)
	go s.jobs.commitLoop()
	r, st := <-reg, <-stopped
	if r.err != nil || st.err != nil {
		t.Fatalf("register %v, stop %v", r.err, st.err)
	}
	if r.res.Index != st.res.Index {
		t.Errorf("register at %d, stop at %d: want one entry", r.res.Index, st.res.Index)
	}
	j := s.State().Snapshot().JobByID("batch")
	if j == nil || !j.Stop || j.Version != 1 {
		t.Fatalf("job after the batch: %+v", j)
	}
	if _, err := c.StopJob(bg, "batch", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopJob(bg, "batch", false); !api.IsNotFound(err) {
		t.Fatalf("stop after purge: %v, want 404", err)
	}
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if len(s.jobs.pending) != 0 || len(s.jobs.queue) != 0 {
		t.Fatalf("job writer not idle: %d pending, %d queued", len(s.jobs.pending), len(s.jobs.queue))
	}
}

func mockJobStruct(name string, count int) *structs.Job {
	return &structs.Job{Name: name, Count: count, Driver: "mock", Resources: structs.Resources{CPU: 500, MemoryMB: 256}}
}

// TestSchedulersSeeJobWritesInTheLog: a job write queued or proposed but
// not yet applied is in the schedulers' view (a plan for it is proposed
// after it, so it applies after it); once it leaves the set the store has
// it.
func TestSchedulersSeeJobWritesInTheLog(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	job := mockJobStruct("inlog", 1)
	job.ID = "inlog"
	s.jobs.mu.Lock()
	s.jobs.pending = map[string]*jobWrite{
		"inlog":  {jobID: "inlog", after: job},
		"purged": {jobID: "purged"},
	}
	s.jobs.mu.Unlock()
	view := s.plans.snapshot()
	if j := view.JobByID("inlog"); j != job {
		t.Fatalf("view has %+v, want the job in the log", j)
	}
	if j := view.JobByID("purged"); j != nil {
		t.Fatalf("a purge in the log still shows %+v", j)
	}
	if s.State().Snapshot().JobByID("inlog") != nil {
		t.Fatal("the store has a job that was never applied")
	}
	s.jobs.mu.Lock()
	s.jobs.pending = nil
	s.jobs.mu.Unlock()
	if j := s.plans.snapshot().JobByID("inlog"); j != nil {
		t.Fatalf("view without writes in flight has %+v", j)
	}
}

// TestFlushProposesQueuedWritesFirst: a job write queued (and already in
// the schedulers' view) is in the Raft log once flush returns, so an entry
// proposed after the flush (a plan checked against the write) applies
// after it.
func TestFlushProposesQueuedWritesFirst(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	// Hold the proposer back: only the flush proposes.
	s.jobs.mu.Lock()
	s.jobs.committing = true
	s.jobs.mu.Unlock()
	done := make(chan *jobWrite, 1)
	go func() {
		w, _ := s.jobs.write("flushed", func(*structs.Job) (structs.JobWrite, *structs.Job, bool) {
			job := mockJobStruct("flushed", 1)
			job.ID = "flushed"
			job.Canonicalize()
			return structs.JobWrite{Register: &structs.JobRegisterRequest{Job: job}}, job, true
		}, nil)
		done <- w
	}()
	waitFor(t, 5*time.Second, "the write to queue", func() (bool, string) {
		s.jobs.mu.Lock()
		defer s.jobs.mu.Unlock()
		return len(s.jobs.queue) == 1, fmt.Sprint(len(s.jobs.queue))
	})
	if j := s.plans.snapshot().JobByID("flushed"); j == nil {
		t.Fatal("a queued write is not in the schedulers' view")
	}
	s.jobs.flush()
	later, _, err := s.raftApply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{
		Node: &structs.Node{ID: "n1", Name: "n1", Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}})
	if err != nil {
		t.Fatal(err)
	}
	w := <-done
	if w.err != nil || w.index == 0 || w.index >= later {
		t.Fatalf("job write at %d (err %v), entry proposed after the flush at %d: want the write first", w.index, w.err, later)
	}
	// Hand the writer back (nothing is queued).
	s.jobs.mu.Lock()
	s.jobs.committing = false
	s.jobs.mu.Unlock()
}

// TestFlushWaitsForAProposalInProgress: a write the proposer took off the
// queue is not in the Raft log until its proposal returns (which may wait
// at the commit gate); a flush must not return before, or a plan checked
// against the write could enter the log ahead of it.
func TestFlushWaitsForAProposalInProgress(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	s.jobs.proposeMu.Lock() // a proposal in progress
	returned := make(chan struct{})
	go func() {
		s.jobs.flush()
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("flush returned while a proposal was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	s.jobs.proposeMu.Unlock()
	<-returned
}
