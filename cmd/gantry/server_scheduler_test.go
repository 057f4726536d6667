package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/scheduler/architecture"
)

// TestServerSchedulerFlags: the server's scheduler flags keep their names and land
// in the nested settings of the architecture that owns them; shared-state
// settings given with another architecture are refused, not ignored.
func TestServerSchedulerFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		arch    string
		workers int
		batch   int
		sample  int
		err     string
	}{
		{"defaults", nil, "monolithic", 4, 0, 8, ""},
		{"shared-state", []string{"--scheduler", "shared-state", "--schedulers", "3", "--batch-schedulers", "2", "--sample-size", "12"}, "shared-state", 3, 2, 12, ""},
		{"monolithic sample", []string{"--sample-size", "2"}, "monolithic", 4, 0, 2, ""},
		{"workers without shared-state", []string{"--schedulers", "8"}, "", 0, 0, 0, "--schedulers: needs --scheduler shared-state"},
		{"batch without shared-state", []string{"--scheduler", "monolithic", "--batch-schedulers", "1"}, "", 0, 0, 0, "--batch-schedulers: needs --scheduler shared-state"},
		{"two-level", []string{"--scheduler", "two-level", "--offer-timeout", "5s", "--role-weight", "ml=2", "--role-quota", "ml=4000,8192"}, "two-level", 4, 0, 8, ""},
		{"two-level flag without it", []string{"--scheduler", "shared-state", "--role-weight", "ml=2"}, "", 0, 0, 0, "--role-weight: needs --scheduler two-level"},
		{"bad role weight", []string{"--scheduler", "two-level", "--role-weight", "ml"}, "", 0, 0, 0, "role=weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := architecture.DefaultConfig()
			f := pflag.NewFlagSet("server", pflag.ContinueOnError)
			schedulerFlags(f, &cfg)
			err := f.Parse(tt.args)
			if err == nil {
				err = archFlagsNeedIt(f, cfg.Architecture)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := cfg
			if s.Architecture != tt.arch || s.SharedState.Workers != tt.workers || s.SharedState.BatchWorkers != tt.batch || s.SampleSize != tt.sample {
				t.Fatalf("scheduler config %+v", s)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("flags gave an invalid config: %v", err)
			}
			if tt.arch == "two-level" {
				ml := s.TwoLevel.Allocator.Roles["ml"]
				if s.TwoLevel.Allocator.OfferTimeout.String() != "5s" || ml.Weight != 2 || ml.Quota.CPU != 4000 || ml.Quota.MemoryMB != 8192 {
					t.Fatalf("two-level settings %+v", s.TwoLevel.Allocator)
				}
			}
		})
	}
}
