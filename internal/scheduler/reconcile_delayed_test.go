package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestReconcileDelayedLists: every index waiting for its reschedule delay
// is listed with the attempt it will be and when, and RetryAt is the
// earliest of them, so the caller wakes the job once, at the right time.
func TestReconcileDelayedLists(t *testing.T) {
	job := &structs.Job{ID: "web", Name: "web", Count: 3, Version: 1, Driver: "mock",
		Resources: structs.Resources{CPU: 100, MemoryMB: 100},
		Reschedule: structs.ReschedulePolicy{Unlimited: true, Delay: structs.Duration(10 * time.Second),
			DelayFunction: structs.DelayExponential, MaxDelay: structs.Duration(time.Hour)}}
	job.Canonicalize()
	failedAt := func(ago time.Duration, count int) func(*structs.Allocation) {
		return func(a *structs.Allocation) {
			a.ModifyTime = now0.Add(-ago).UnixNano()
			a.CreateTime = a.ModifyTime - int64(time.Second)
			a.RescheduleCount = count
		}
	}
	allocs := []*structs.Allocation{
		ra("a0", 0, "n1", 1, run, structs.AllocClientFailed, failedAt(5*time.Second, 0)), // waits 10s: 5s left
		ra("a1", 1, "n1", 1, run, structs.AllocClientFailed, failedAt(time.Second, 3)),   // waits 80s: 79s left
		ra("a2", 2, "n1", 1, run, structs.AllocClientRunning),
	}
	nodes := func(string) *structs.Node { return &structs.Node{ID: "n1", Status: structs.NodeStatusReady} }
	r := Reconcile(job, allocs, nodes, now0)
	want := []DelayedReschedule{
		{Index: 0, Previous: "a0", Attempt: 1, Delay: 10 * time.Second, At: now0.Add(5 * time.Second)},
		{Index: 1, Previous: "a1", Attempt: 4, Delay: 80 * time.Second, At: now0.Add(79 * time.Second)},
	}
	if !slices.Equal(r.Delayed, want) {
		t.Fatalf("delayed %+v\nwant %+v", r.Delayed, want)
	}
	if !r.RetryAt.Equal(now0.Add(5*time.Second)) || len(r.Place) != 0 {
		t.Fatalf("retry at %v, place %v; want the earliest, %v, and nothing placed", r.RetryAt, r.Place, now0.Add(5*time.Second))
	}
}
