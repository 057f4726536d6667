package scheduler

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestReconcileRescheduleBackoff: the wait before a failed copy is
// replaced grows with the chain's reschedule count as the job's
// delay_function says, never past max_delay, and starts over after a copy
// that ran for longer than max_delay. The policies are written as in a job
// document.
func TestReconcileRescheduleBackoff(t *testing.T) {
	const (
		exp = `{"unlimited":true,"delay":"30s","delay_function":"exponential","max_delay":"1h"}`
		fib = `{"unlimited":true,"delay":"10s","delay_function":"fibonacci","max_delay":"1m"}`
	)
	tests := []struct {
		name   string
		policy string
		count  int           // the failed copy's RescheduleCount
		ran    time.Duration // from its placement to its failure
		wait   time.Duration // from the failure to the replacement
		next   int           // the replacement's RescheduleCount
	}{
		{"constant", `{"unlimited":true,"delay":"10s","delay_function":"constant"}`, 5, time.Second, 10 * time.Second, 6},
		{"no function is constant", `{"unlimited":true,"delay":"10s"}`, 5, time.Second, 10 * time.Second, 6},
		{"exponential first", exp, 0, time.Second, 30 * time.Second, 1},
		{"exponential second", exp, 1, time.Second, time.Minute, 2},
		{"exponential fourth", exp, 3, time.Second, 4 * time.Minute, 4},
		{"exponential capped", exp, 7, time.Second, time.Hour, 8},
		{"exponential long chain", exp, 1 << 30, time.Second, time.Hour, 1<<30 + 1},
		{"fibonacci 1", fib, 0, time.Second, 10 * time.Second, 1},
		{"fibonacci 2", fib, 1, time.Second, 10 * time.Second, 2},
		{"fibonacci 3", fib, 2, time.Second, 20 * time.Second, 3},
		{"fibonacci 5", fib, 4, time.Second, 50 * time.Second, 5},
		{"fibonacci capped", fib, 5, time.Second, time.Minute, 6},
		{"good run starts over", exp, 9, 2 * time.Hour, 30 * time.Second, 1},
		{"good run, limited: delay starts over, count goes on",
			`{"attempts":5,"delay":"30s","delay_function":"exponential","max_delay":"1h"}`, 3, 2 * time.Hour, 30 * time.Second, 4},
		{"limited exponential", `{"attempts":5,"delay":"1s","delay_function":"exponential","max_delay":"1m"}`, 4, time.Second, 16 * time.Second, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := &structs.Job{ID: "web", Name: "web", Count: 1, Version: 1, Driver: "mock",
				Resources: structs.Resources{CPU: 100, MemoryMB: 100}}
			if err := json.Unmarshal([]byte(tc.policy), &job.Reschedule); err != nil {
				t.Fatal(err)
			}
			job.Canonicalize()
			failed := ra("f", 0, "n1", 1, run, structs.AllocClientFailed, func(a *structs.Allocation) {
				a.RescheduleCount = tc.count
				a.ModifyTime = now0.UnixNano()
				a.CreateTime = now0.Add(-tc.ran).UnixNano()
			})
			nodes := func(string) *structs.Node { return &structs.Node{ID: "n1", Status: structs.NodeStatusReady} }

			r := Reconcile(job, []*structs.Allocation{failed}, nodes, now0)
			if len(r.Place) != 0 || r.RetryAt.Sub(now0) != tc.wait {
				t.Fatalf("at the failure: place %v, retry in %v; want nothing placed and a retry in %v", r.Place, r.RetryAt.Sub(now0), tc.wait)
			}
			r = Reconcile(job, []*structs.Allocation{failed}, nodes, now0.Add(tc.wait-time.Nanosecond))
			if len(r.Place) != 0 {
				t.Fatalf("placed %v before the wait ended", r.Place)
			}
			r = Reconcile(job, []*structs.Allocation{failed}, nodes, now0.Add(tc.wait))
			if got := fmt.Sprint(r.Place); len(r.Place) != 1 || r.Place[0].RescheduleCount != tc.next || r.Place[0].Previous != "f" || !r.RetryAt.IsZero() {
				t.Fatalf("when the wait ended: place %s retry %v; want one replacement of f with reschedule count %d", got, r.RetryAt, tc.next)
			}
		})
	}
}
