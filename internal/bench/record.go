package bench

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// jobTrack follows one submitted job: when it was submitted and which of
// its copies (by index) were seen placed and running.
type jobTrack struct {
	count     int
	submitted atomic.Int64 // unix nanoseconds; 0 = not yet

	mu      sync.Mutex
	placed  []bool
	running []bool
}

// recorder collects what simulated nodes observe. Lookups by job ID use a
// map built before the run starts, so they need no lock.
type recorder struct {
	now  func() time.Time
	jobs map[string]*jobTrack

	placed     atomic.Int64 // distinct (job, index) pairs seen placed
	running    atomic.Int64 // distinct (job, index) pairs acknowledged running
	received   atomic.Int64 // allocations received, replacements included
	lastPlaced atomic.Int64 // unix nanoseconds of the last new placement
	unknown    atomic.Int64 // allocations of jobs the workload did not submit

	mu         sync.Mutex
	placedLat  []time.Duration
	runningLat []time.Duration
	stages     []stageSample // submit-to-placed by stage, where time stamps allow
}

func newRecorder(now func() time.Time, w *Workload) *recorder {
	r := &recorder{now: now, jobs: make(map[string]*jobTrack, w.TotalJobs())}
	for _, g := range w.Jobs {
		for i := range g.Count {
			r.jobs[g.job(i).ID] = &jobTrack{count: g.Tasks, placed: make([]bool, g.Tasks), running: make([]bool, g.Tasks)}
		}
	}
	r.placedLat = make([]time.Duration, 0, w.TotalTasks())
	r.runningLat = make([]time.Duration, 0, w.TotalTasks())
	return r
}

func (r *recorder) submitted(jobID string, at time.Time) {
	if t := r.jobs[jobID]; t != nil {
		t.submitted.CompareAndSwap(0, at.UnixNano())
	}
}

// mark records the first time copy idx of job was seen in a state. isNew
// reports a first sighting; hasLat whether the job's submit time was known
// (a copy seen before the submitter stored it gets no sample rather than a
// wrong one).
func (r *recorder) mark(jobID string, idx int, running bool, at time.Time) (lat time.Duration, hasLat, isNew bool) {
	t := r.jobs[jobID]
	if t == nil {
		r.unknown.Add(1)
		return 0, false, false
	}
	if idx < 0 || idx >= t.count {
		return 0, false, false
	}
	t.mu.Lock()
	set := t.placed
	if running {
		set = t.running
	}
	if set[idx] {
		t.mu.Unlock()
		return 0, false, false
	}
	set[idx] = true
	t.mu.Unlock()
	sub := t.submitted.Load()
	if sub == 0 {
		return 0, false, true
	}
	return at.Sub(time.Unix(0, sub)), true, true
}

// placedAlloc is called when a node first receives an allocation to run,
// in a watch frame the server sent at frameAt (unix nanoseconds, 0 if
// unknown).
func (r *recorder) placedAlloc(a *structs.Allocation, frameAt int64) {
	now := r.now()
	r.received.Add(1)
	lat, hasLat, isNew := r.mark(a.JobID, a.Index, false, now)
	if !isNew {
		return
	}
	r.placed.Add(1)
	r.lastPlaced.Store(now.UnixNano())
	if hasLat {
		st, ok := splitStages(r.jobs[a.JobID].submitted.Load(), a, frameAt, now)
		r.mu.Lock()
		r.placedLat = append(r.placedLat, lat)
		if ok {
			r.stages = append(r.stages, st)
		}
		r.mu.Unlock()
	}
}

// runningAlloc is called when the server acknowledged a running report.
func (r *recorder) runningAlloc(jobID string, idx int) {
	lat, hasLat, isNew := r.mark(jobID, idx, true, r.now())
	if !isNew {
		return
	}
	r.running.Add(1)
	if hasLat {
		r.mu.Lock()
		r.runningLat = append(r.runningLat, lat)
		r.mu.Unlock()
	}
}

// Percentiles of a latency sample, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	N   int     `json:"n"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1), N: len(s)}
}

func (r *recorder) latencies() (placed, running Percentiles, stages []StageFigure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return percentiles(r.placedLat), percentiles(r.runningLat), stageFigures(r.stages)
}
