package scheduler_test

import (
	"errors"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*scheduler.Config)
		want string // "" = valid
	}{
		{"defaults", func(*scheduler.Config) {}, ""},
		{"no retries", func(c *scheduler.Config) { c.MaxPlanRetries = 0 }, ""},
		{"sample", func(c *scheduler.Config) { c.SampleSize = 0 }, "sample_size: must be >= 1 (got 0)"},
		{"retries", func(c *scheduler.Config) { c.MaxPlanRetries = -1 }, "max_plan_retries: must be >= 0 (got -1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scheduler.DefaultConfig()
			tt.mod(&c)
			before := c
			err := c.Validate()
			if c != before {
				t.Fatalf("Validate changed the config: %+v -> %+v", before, c)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNestErrors(t *testing.T) {
	err := errors.Join(
		scheduler.FieldErrorf("workers", "must be >= 1 (got 0)"),
		scheduler.NestErrors("pools", scheduler.FieldErrorf("name", "is required")),
		errors.New("something else"),
	)
	got := scheduler.NestErrors("scheduler", scheduler.NestErrors("shared_state", err))
	want := "scheduler.shared_state.workers: must be >= 1 (got 0)\n" +
		"scheduler.shared_state.pools.name: is required\n" +
		"scheduler: shared_state: something else"
	if got.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	var fe structs.FieldError
	if !errors.As(got, &fe) || fe.Field != "scheduler.shared_state.workers" {
		t.Fatalf("first field error %+v", fe)
	}
	if scheduler.NestErrors("x", nil) != nil {
		t.Fatal("nil error nested into non-nil")
	}
}
