package jobqueue_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
)

// TestRetriesKeepEarliest: per job only the earliest retry stays pending,
// a fired retry enqueues once, and Stop cancels what is left.
func TestRetriesKeepEarliest(t *testing.T) {
	epoch := time.Unix(1000, 0)
	var mu sync.Mutex
	var got []string
	r := jobqueue.NewRetries(func() time.Time { return epoch }, func(id string, prio int) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, id)
	})
	var timers []*schedtest.FakeTimer
	r.AfterFunc = func(d time.Duration, f func()) jobqueue.Stopper {
		ft := &schedtest.FakeTimer{D: d, F: f}
		timers = append(timers, ft)
		return ft
	}
	r.After("a", 1, epoch.Add(10*time.Second))
	r.After("a", 1, epoch.Add(20*time.Second)) // later: ignored
	r.After("a", 1, epoch.Add(5*time.Second))  // earlier: replaces
	r.After("b", 1, epoch.Add(time.Minute))
	if len(timers) != 3 || !timers[0].Stopped || timers[1].Stopped || timers[1].D != 5*time.Second {
		t.Fatalf("timers %+v, want a's 10s stopped, a's 5s and b's 1m pending", timers)
	}
	timers[0].F() // a stale timer that fired anyway still enqueues, as before
	timers[1].F()
	r.After("a", 1, epoch.Add(30*time.Second)) // a fired: a new retry is taken
	if len(timers) != 4 {
		t.Fatalf("a retry after the fired one was not scheduled: %d timers", len(timers))
	}
	r.Stop()
	if !timers[2].Stopped || !timers[3].Stopped {
		t.Fatalf("Stop left timers running: %+v", timers)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "a" {
		t.Fatalf("enqueued %v", got)
	}
}
