package structs

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	const s = time.Second
	maxDur := time.Duration(math.MaxInt64)
	tests := []struct {
		fn         string
		delay, max time.Duration
		attempts   []int
		want       []time.Duration
	}{
		{DelayConstant, 5 * s, time.Hour, []int{1, 2, 10, 1 << 40}, []time.Duration{5 * s, 5 * s, 5 * s, 5 * s}},
		{"", 5 * s, 0, []int{1, 7}, []time.Duration{5 * s, 5 * s}},
		{DelayConstant, 5 * s, s, []int{3}, []time.Duration{5 * s}}, // the cap is for the growing functions
		{DelayExponential, 30 * s, time.Hour, []int{0, 1, 2, 3, 4, 7, 8, 9, 1 << 40},
			[]time.Duration{30 * s, 30 * s, time.Minute, 2 * time.Minute, 4 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}},
		{DelayExponential, 3 * s, 10 * s, []int{2, 3}, []time.Duration{6 * s, 10 * s}},
		{DelayExponential, s, 0, []int{64, 1 << 40}, []time.Duration{maxDur, maxDur}}, // uncapped: saturates, never wraps
		{DelayFibonacci, 10 * s, time.Hour, []int{1, 2, 3, 4, 5, 6, 7}, []time.Duration{10 * s, 10 * s, 20 * s, 30 * s, 50 * s, 80 * s, 130 * s}},
		{DelayFibonacci, 10 * s, time.Minute, []int{6, 1 << 40}, []time.Duration{time.Minute, time.Minute}},
		{DelayFibonacci, s, 0, []int{200}, []time.Duration{maxDur}},
		{DelayExponential, 0, time.Hour, []int{5}, []time.Duration{0}},
		{"linear", 5 * s, time.Hour, []int{3}, []time.Duration{5 * s}},
	}
	for _, tc := range tests {
		for i, n := range tc.attempts {
			if got := BackoffDelay(tc.fn, tc.delay, tc.max, n); got != tc.want[i] {
				t.Errorf("%s delay %s max %s attempt %d: %s, want %s", tc.fn, tc.delay, tc.max, n, got, tc.want[i])
			}
		}
	}
	p := ReschedulePolicy{Delay: Duration(s), DelayFunction: DelayExponential, MaxDelay: Duration(time.Minute)}
	if got := p.NextDelay(4); got != 8*s {
		t.Errorf("ReschedulePolicy.NextDelay(4) = %s, want 8s", got)
	}
	r := RestartPolicy{Delay: Duration(s), DelayFunction: DelayFibonacci, MaxDelay: Duration(time.Minute)}
	if got := r.NextDelay(4); got != 3*s {
		t.Errorf("RestartPolicy.NextDelay(4) = %s, want 3s", got)
	}
}

// TestPolicyDefaults: a job without policies gets Nomad's, by type; a
// block written without a delay function keeps its constant delay.
func TestPolicyDefaults(t *testing.T) {
	svc := &Job{Name: "web"}
	svc.Canonicalize()
	if want := (RestartPolicy{Attempts: 2, Interval: Duration(30 * time.Minute), Delay: Duration(15 * time.Second), DelayFunction: DelayConstant}); svc.Restart != want {
		t.Errorf("service restart %+v, want %+v", svc.Restart, want)
	}
	if want := (ReschedulePolicy{Unlimited: true, Delay: Duration(30 * time.Second), DelayFunction: DelayExponential, MaxDelay: Duration(time.Hour)}); svc.Reschedule != want {
		t.Errorf("service reschedule %+v, want %+v", svc.Reschedule, want)
	}
	batch := &Job{Name: "b", Type: JobTypeBatch}
	batch.Canonicalize()
	if want := (RestartPolicy{Attempts: 3, Interval: Duration(24 * time.Hour), Delay: Duration(15 * time.Second), DelayFunction: DelayConstant}); batch.Restart != want {
		t.Errorf("batch restart %+v, want %+v", batch.Restart, want)
	}
	if want := (ReschedulePolicy{Attempts: 1, Delay: Duration(5 * time.Second), DelayFunction: DelayConstant}); batch.Reschedule != want {
		t.Errorf("batch reschedule %+v, want %+v", batch.Reschedule, want)
	}
	old := &Job{Name: "old", Restart: RestartPolicy{Attempts: 1, Delay: Duration(time.Second)},
		Reschedule: ReschedulePolicy{Unlimited: true, Delay: Duration(time.Second)}}
	old.Canonicalize()
	if old.Restart.DelayFunction != DelayConstant || old.Reschedule.DelayFunction != DelayConstant || old.Reschedule.MaxDelay != 0 {
		t.Errorf("a block without delay_function: restart %+v reschedule %+v, want constant", old.Restart, old.Reschedule)
	}
	for _, j := range []*Job{svc, batch, old} {
		j.Driver, j.Resources = "mock", Resources{CPU: 1, MemoryMB: 1}
		if err := j.Validate(nil); err != nil {
			t.Errorf("%s: defaults are invalid: %v", j.Name, err)
		}
	}
}

// TestValidateBackoff: a delay function is one of three, and the growing
// ones need a cap of at least the delay; each error names its field.
func TestValidateBackoff(t *testing.T) {
	d := func(v time.Duration) Duration { return Duration(v) }
	tests := []struct {
		name       string
		restart    RestartPolicy
		reschedule ReschedulePolicy
		want       []string // field: rule prefixes
	}{
		{name: "valid exponential", reschedule: ReschedulePolicy{Unlimited: true, Delay: d(time.Second), DelayFunction: DelayExponential, MaxDelay: d(time.Minute)}},
		{name: "valid fibonacci with cap equal to delay", restart: RestartPolicy{Attempts: 2, Delay: d(time.Second), DelayFunction: DelayFibonacci, MaxDelay: d(time.Second)}},
		{name: "constant ignores the cap", reschedule: ReschedulePolicy{Attempts: 1, Delay: d(time.Minute), DelayFunction: DelayConstant, MaxDelay: d(time.Second)}},
		{name: "unknown function",
			reschedule: ReschedulePolicy{Attempts: 1, Delay: d(time.Second), DelayFunction: "linear"},
			want:       []string{`reschedule.delay_function: must be "constant", "exponential" or "fibonacci" (got "linear")`}},
		{name: "exponential without cap",
			restart: RestartPolicy{Attempts: 1, Delay: d(15 * time.Second), DelayFunction: DelayExponential},
			want:    []string{`restart.max_delay: must be set, and at least delay (15s), with delay_function "exponential": it caps the growing wait (got 0s)`}},
		{name: "cap below delay",
			reschedule: ReschedulePolicy{Unlimited: true, Delay: d(time.Minute), DelayFunction: DelayFibonacci, MaxDelay: d(time.Second)},
			want:       []string{`reschedule.max_delay: must be set, and at least delay (1m0s)`}},
		{name: "negative cap",
			restart: RestartPolicy{Attempts: 1, Delay: d(time.Second), DelayFunction: DelayConstant, MaxDelay: d(-time.Second)},
			want:    []string{`restart.max_delay: must be >= 0 (got -1s)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &Job{Name: "web", Driver: "mock", Resources: Resources{CPU: 1, MemoryMB: 1}, Restart: tc.restart, Reschedule: tc.reschedule}
			j.Canonicalize()
			err := j.Validate(nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != len(tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			for i, w := range tc.want {
				if got := ve.Errors[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("error %q, want %q", got, w)
				}
			}
		})
	}
}
