package cli

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestSystemGC(t *testing.T) {
	tests := []struct {
		name   string
		answer *api.GCResponse
		want   string
	}{
		{"collected", &api.GCResponse{Allocations: 120, Jobs: 1, Entries: 2, Index: 88}, "Collected 120 allocations and 1 job in 2 Raft entries (index 88)\n"},
		{"one of each", &api.GCResponse{Allocations: 1, Entries: 1, Index: 9}, "Collected 1 allocation and 0 jobs in 1 Raft entry (index 9)\n"},
		{"nothing", &api.GCResponse{}, "Nothing to collect\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.serve("POST /v1/system/gc", tc.answer)
			e := newEnv(t, f.srv.URL, FormatTable)
			if err := e.SystemGC(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.out.String(); got != tc.want {
				t.Fatalf("output %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		f := newFakeServer(t)
		f.mux.HandleFunc("POST /v1/system/gc", func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, http.StatusConflict, "garbage collection is unavailable until every server applies its Raft entries (protocol 3; waiting for s2: protocol 2)", nil)
		})
		e := newEnv(t, f.srv.URL, FormatTable)
		err := e.SystemGC(context.Background())
		if err == nil || !strings.Contains(err.Error(), "waiting for s2: protocol 2") {
			t.Fatalf("err %v, want the server's reason", err)
		}
	})
}

func TestPolicyTexts(t *testing.T) {
	d := func(v time.Duration) api.Duration { return api.Duration(v) }
	tests := []struct{ got, want string }{
		{restartText(api.RestartPolicy{Attempts: 2, Interval: d(30 * time.Minute), Delay: d(15 * time.Second)}), "2 within 30m, after 15s"},
		{restartText(api.RestartPolicy{Attempts: 3, Delay: d(time.Second), DelayFunction: structs.DelayFibonacci, MaxDelay: d(90 * time.Second)}),
			"3 in all, after 1s, growing as Fibonacci up to 1m30s"},
		{restartText(api.RestartPolicy{Delay: d(time.Second)}), "none"},
		{rescheduleText(api.ReschedulePolicy{Unlimited: true, Delay: d(30 * time.Second), DelayFunction: structs.DelayExponential, MaxDelay: d(time.Hour)}),
			"unlimited, after 30s, doubling up to 1h"},
		{rescheduleText(api.ReschedulePolicy{Attempts: 1, Delay: d(5 * time.Second), DelayFunction: structs.DelayConstant}), "1 attempt, after 5s"},
		{rescheduleText(api.ReschedulePolicy{Attempts: 3}), "3 attempts, at once"},
		{rescheduleText(api.ReschedulePolicy{Delay: d(time.Second)}), "none"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
	limited := testJob("b", structs.JobTypeBatch, 1)
	limited.Reschedule = api.ReschedulePolicy{Attempts: 3, Delay: d(time.Minute)}
	for _, tc := range []struct {
		job     *api.Job
		attempt int
		at      time.Time
		want    string
	}{
		{testJob("web", structs.JobTypeService, 1), 4, now.Add(8*time.Second + 300*time.Millisecond), "web[0]: next reschedule in 8s, attempt 4 (replaces a0c0ffee)"},
		{testJob("web", structs.JobTypeService, 1), 9, now.Add(61 * time.Minute), "web[0]: next reschedule in 1h1m, attempt 9 (replaces a0c0ffee)"},
		{limited, 2, now.Add(-time.Second), "web[0]: next reschedule due now, attempt 2 of 3 (replaces a0c0ffee)"},
	} {
		r := &api.PendingReschedule{Name: "web[0]", PreviousAllocation: "a0c0ffee-0000", Attempt: tc.attempt, Time: tc.at.UnixNano()}
		if got := rescheduleLine(now, tc.job, r); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}
