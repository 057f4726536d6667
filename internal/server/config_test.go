package server

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
}

// TestConfigZeroIsNotDefault: a zero field is refused by name, never
// replaced by a default behind the caller's back (defaults come from
// DefaultConfig only).
func TestConfigZeroIsNotDefault(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"plan batch", func(c *Config) { c.PlanBatch = 0 }, "plan_batch"},
		{"logger", func(c *Config) { c.Logger = nil }, "logger"},
		{"raft timeout", func(c *Config) { c.RaftTimeout = 0 }, "raft_timeout"},
		{"raft timeout too short", func(c *Config) { c.RaftTimeout = 9 * time.Millisecond }, "raft_timeout"},
		{"apply timeout", func(c *Config) { c.ApplyTimeout = 0 }, "apply_timeout"},
		{"negative apply timeout", func(c *Config) { c.ApplyTimeout = -time.Second }, "apply_timeout"},
		{"snapshot threshold", func(c *Config) { c.SnapshotThreshold = 0 }, "snapshot_threshold"},
		{"snapshot interval", func(c *Config) { c.SnapshotInterval = 0 }, "snapshot_interval"},
		{"snapshots retain", func(c *Config) { c.SnapshotsRetain = 0 }, "snapshots_retain"},
		{"heartbeat grace", func(c *Config) { c.HeartbeatGrace = -time.Second }, "heartbeat_grace"},
		{"no driver rules", func(c *Config) { c.Drivers = nil }, "drivers"},
		{"no driver registered", func(c *Config) { c.Drivers = &driverschema.Registry{} }, "drivers"},
		{"gc interval", func(c *Config) { c.GCInterval = 0 }, "gc_interval"},
		{"negative gc alloc threshold", func(c *Config) { c.GCAllocThreshold = -time.Second }, "gc_alloc_threshold"},
		{"negative gc job threshold", func(c *Config) { c.GCJobThreshold = -time.Second }, "gc_job_threshold"},
		{"negative gc allocs kept", func(c *Config) { c.GCMaxTerminalAllocsPerJob = -1 }, "gc_max_terminal_allocs_per_job"},
		{"gc batch size", func(c *Config) { c.GCBatchSize = 0 }, "gc_batch_size"},
		{"gc batch too large", func(c *Config) { c.GCBatchSize = MaxGCBatchSize + 1 }, "gc_batch_size"},
		{"acl token with a line break", func(c *Config) { c.ACL.Token = "abc\n" }, "acl.token"},
		{"acl token with spaces around", func(c *Config) { c.ACL.Token = " abc" }, "acl.token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatalf("accepted; want an error naming %s", tc.field)
			}
			// Exactly one error, and it names the field.
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != 1 || !strings.HasPrefix(joined.Unwrap()[0].Error(), tc.field+": ") {
				t.Fatalf("err %q, want exactly one error, naming %s", err, tc.field)
			}
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted the config Validate refuses")
			}
		})
	}
}

// TestConfigValidateIsPure: Validate fills nothing in, and New keeps the
// config as given (HeartbeatGrace 0 still means "the TTL").
func TestConfigValidateIsPure(t *testing.T) {
	cfg := testConfig(t)
	cfg.HeartbeatGrace = 0
	before := cfg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.HeartbeatGrace != 0 || !reflect.DeepEqual(s.cfg.Scheduler, before.Scheduler) || s.cfg.Logger != before.Logger {
		t.Fatalf("New changed the config: %+v", s.cfg)
	}
	if got := s.cfg.heartbeatGrace(); got != cfg.HeartbeatTTL {
		t.Fatalf("grace %s, want the TTL %s", got, cfg.HeartbeatTTL)
	}
}

// TestRegisterJobChecksDriver: the API refuses a job naming an unknown
// driver or a bad config for a known one, with the field named, through
// the registry the drivers fill (the server does not import them).
func TestRegisterJobChecksDriver(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	tests := []struct {
		name   string
		driver string
		config map[string]any
		fields []string
		rule   string
	}{
		{"unknown driver", "dockr", nil, []string{"driver"}, `unknown driver "dockr" (known: exec, mock)`},
		{"exec without command", "exec", map[string]any{"args": []any{"-c"}}, []string{"config.command"}, "is required"},
		{"exec typo", "exec", map[string]any{"comand": "/bin/true"}, []string{"config.comand", "config.command"}, "unknown option"},
		{"mock exit code", "mock", map[string]any{"exit_code": 300}, []string{"config.exit_code"}, "between 0 and 255"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := mockJob("j", 1)
			job.Driver, job.Config = tc.driver, tc.config
			_, err := c.RegisterJob(bg, job)
			if err == nil {
				t.Fatal("job accepted")
			}
			var ae *api.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v (%T), want an API error with fields", err, err)
			}
			var got []string
			for _, f := range ae.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") || !strings.Contains(ae.Fields[0].Rule, tc.rule) {
				t.Fatalf("fields %+v, want %v with %q", ae.Fields, tc.fields, tc.rule)
			}
		})
	}
}
