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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := architecture.DefaultConfig()
			f := pflag.NewFlagSet("server", pflag.ContinueOnError)
			schedulerFlags(f, &cfg)
			if err := f.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := sharedStateFlagsNeedIt(f, cfg.Architecture)
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
		})
	}
}
