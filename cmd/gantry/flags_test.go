package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/agent"
	"github.com/gantry-project/gantry/internal/jobspec"
	"github.com/gantry-project/gantry/internal/server"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// TestServerFlagsMapOntoDefaultConfig: with no flags the server runs with
// server.DefaultConfig exactly, and each flag sets its field.
func TestServerFlagsMapOntoDefaultConfig(t *testing.T) {
	parse := func(args ...string) server.Config {
		t.Helper()
		cfg := server.DefaultConfig()
		f := pflag.NewFlagSet("server", pflag.ContinueOnError)
		serverFlags(f, &cfg)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg.Logger = nil // set by the command from --log-level
		return cfg
	}
	want := server.DefaultConfig()
	want.Logger = nil
	if got := parse(); !reflect.DeepEqual(got, want) {
		t.Fatalf("flag defaults differ from DefaultConfig:\n got %+v\nwant %+v", got, want)
	}
	got := parse("--raft-snapshot-interval", "1m", "--raft-trailing-logs", "7", "--raft-snapshots-retain", "3",
		"--plan-batch", "1", "--join", "a:1,b:2", "--raft-timeout", "200ms")
	if got.SnapshotInterval != time.Minute || got.TrailingLogs != 7 || got.SnapshotsRetain != 3 ||
		got.PlanBatch != 1 || !slices.Equal(got.Join, []string{"a:1", "b:2"}) || got.RaftTimeout != 200*time.Millisecond {
		t.Fatalf("flags not mapped: %+v", got)
	}
	got = parse("--gc-interval", "1m", "--gc-alloc-threshold", "0s", "--gc-job-threshold", "2h",
		"--gc-max-terminal-allocs-per-job", "3", "--gc-batch-size", "100")
	if got.GCInterval != time.Minute || got.GCAllocThreshold != 0 || got.GCJobThreshold != 2*time.Hour ||
		got.GCMaxTerminalAllocsPerJob != 3 || got.GCBatchSize != 100 {
		t.Fatalf("gc flags not mapped: %+v", got)
	}
	got = parse("--ca-file", "ca.pem", "--cert-file", "s.pem", "--key-file", "s-key.pem", "--region", "eu",
		"--verify-server-hostname=false")
	if want := (tlsutil.Config{CAFile: "ca.pem", CertFile: "s.pem", KeyFile: "s-key.pem", Region: "eu"}); got.TLS != want {
		t.Fatalf("TLS flags not mapped: %+v", got.TLS)
	}
}

// TestAgentFlagsMapOntoDefaultConfig: the same for the agent.
func TestAgentFlagsMapOntoDefaultConfig(t *testing.T) {
	parse := func(args ...string) agent.Config {
		t.Helper()
		cfg := agent.DefaultConfig()
		var labels []string
		f := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		agentFlags(f, &cfg, &labels)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg.Logger, cfg.Now, cfg.DiskFree = nil, nil, nil // functions and loggers do not compare
		return cfg
	}
	want := agent.DefaultConfig()
	want.Logger, want.Now, want.DiskFree = nil, nil, nil
	if got := parse(); !reflect.DeepEqual(got, want) {
		t.Fatalf("flag defaults differ from DefaultConfig:\n got %+v\nwant %+v", got, want)
	}
	got := parse("--servers", "a:1,b:2", "--data-dir", "d", "--cpu", "500", "--http-addr", "127.0.0.1:9", "--disk-min-free-mb", "7",
		"--ca-file", "ca.pem", "--cert-file", "a.pem", "--key-file", "a-key.pem",
		"--docker-endpoint", "tcp://10.0.0.5:2375", "--docker-allow-host-binds")
	if !slices.Equal(got.Servers, []string{"a:1", "b:2"}) || got.DataDir != "d" || got.CPU != 500 || got.HTTPAddr != "127.0.0.1:9" || got.DiskMinFreeMB != 7 ||
		got.DockerEndpoint != "tcp://10.0.0.5:2375" || !got.DockerHostBinds {
		t.Fatalf("flags not mapped: %+v", got)
	}
	if want := (tlsutil.Config{CAFile: "ca.pem", CertFile: "a.pem", KeyFile: "a-key.pem", Region: "global", VerifyServerHostname: true}); got.TLS != want {
		t.Fatalf("TLS flags not mapped: %+v", got.TLS)
	}
}

// TestDriversLinked: the gantry binary links the drivers, so the server it
// runs knows them and the CLI checks driver configs before submitting, even
// though neither package imports internal/driver.
func TestDriversLinked(t *testing.T) {
	if names := server.DefaultConfig().Drivers.Names(); !slices.Equal(names, []string{"docker", "exec", "mock"}) {
		t.Fatalf("drivers %v, want [docker exec mock]", names)
	}
	_, err := jobspec.ParseAndValidate([]byte("name: x\ndriver: exec\nconfig: {args: [-c]}\nresources: {cpu: 1, memory_mb: 1}\n"))
	if err == nil || !strings.Contains(err.Error(), "config.command: is required") {
		t.Fatalf("the job parser did not check the exec config: %v", err)
	}
}
