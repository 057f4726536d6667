package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/kv"
)

func TestApplyConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		args    []string
		wantErr string
		check   func(t *testing.T, port int, join []string, timeout time.Duration)
	}{
		{"values", "port: 7001\njoin: [a:1, b:2]\ncluster-node-timeout: 500ms\n", nil, "",
			func(t *testing.T, port int, join []string, timeout time.Duration) {
				if port != 7001 || strings.Join(join, ",") != "a:1,b:2" || timeout != 500*time.Millisecond {
					t.Errorf("port %d join %v timeout %v", port, join, timeout)
				}
			}},
		{"command line wins", "port: 7001\n", []string{"--port", "7002"}, "",
			func(t *testing.T, port int, _ []string, _ time.Duration) {
				if port != 7002 {
					t.Errorf("port %d, want the flag's 7002", port)
				}
			}},
		{"unknown key", "prot: 1\n", nil, `unknown setting "prot"`, nil},
		{"bad value", "port: seven\n", nil, "port", nil},
		{"not yaml", "port: [\n", nil, "config file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("peer", pflag.ContinueOnError)
			port := fs.Int("port", 6379, "")
			join := fs.StringSlice("join", nil, "")
			timeout := fs.Duration("cluster-node-timeout", time.Second, "")
			fs.String("config", "", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "peer.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			err := applyConfigFile(fs, path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, *port, *join, *timeout)
		})
	}
	if err := applyConfigFile(pflag.NewFlagSet("x", pflag.ContinueOnError), "/nonexistent/peer.yaml"); err == nil {
		t.Fatal("missing file: no error")
	}
}

// TestRewriteConfigFile: CONFIG REWRITE of a live store's parameters
// writes a file the peer reads back, keeps the file's other keys, and
// leaves out parameters at their defaults.
func TestRewriteConfigFile(t *testing.T) {
	// CONFIG GET port answers the port the store listens on, so the file
	// names the listener's port, as a peer's file does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	path := filepath.Join(dir, "peer.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, "port: %d\njoin: [a:1]\nmaxclients: 100\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := newPeerCmd().Flags()
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	cfg := kv.DefaultConfig()
	cfg.EventLoops = -1
	cfg.ConfigRewrite = func(get func(string) (string, bool)) error { return rewriteConfigFile(fs, path, get) }
	srv, err := kv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go srv.Serve(ln)
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), DisableIdentity: true})
	defer rdb.Close()
	ctx := context.Background()
	for _, kvp := range [][2]string{{"maxmemory", "10mb"}, {"appendfsync", "always"}, {"maxmemory-policy", "allkeys-lru"},
		{"client-output-buffer-limit", "pubsub 1mb 512kb 30"}, {"timeout", "300"}, {"protected-mode", "no"}, {"maxclients", "50"}} {
		if err := rdb.ConfigSet(ctx, kvp[0], kvp[1]).Err(); err != nil {
			t.Fatalf("CONFIG SET %s: %v", kvp[0], err)
		}
	}
	if err := rdb.Do(ctx, "config", "rewrite").Err(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	text := string(b)
	for _, want := range []string{"port: ", "join:", "maxmemory: \"10485760\"", "appendfsync: always", "maxclients: \"50\"", "protected-mode: \"no\""} {
		if !strings.Contains(text, want) {
			t.Errorf("file lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "slowlog-max-len") || strings.Contains(text, "bind") {
		t.Errorf("a parameter at its default was written:\n%s", text)
	}
	// the peer reads it back
	fs2 := newPeerCmd().Flags()
	if err := applyConfigFile(fs2, path); err != nil {
		t.Fatalf("reading the rewritten file: %v\n%s", err, text)
	}
	for name, want := range map[string]string{"port": fmt.Sprint(port), "maxmemory-policy": "allkeys-lru", "timeout": "300", "appendfsync": "always", "protected-mode": "no"} {
		if f := fs2.Lookup(name); f == nil || f.Value.String() != want {
			t.Errorf("%s read back as %v, want %s", name, f.Value, want)
		}
	}
}
