package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
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
