package agent

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/server"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// TestWithRealServerTLS: with mutual TLS on, an agent registers with an
// in-process server, runs a job, and its task log reaches a client through
// the server's proxy (server to agent over TLS); the agent serves the log
// itself to the server's certificate only.
func TestWithRealServerTLS(t *testing.T) {
	pki, err := tlsutil.CreateBundle(t.TempDir(), "global", tlsutil.RoleServer, tlsutil.RoleAgent, tlsutil.RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NodeName = "s1"
	cfg.RaftTimeout = 100 * time.Millisecond
	cfg.HeartbeatTTL = 5 * time.Second
	cfg.ReconcileInterval = time.Minute
	cfg.Scheduler.Seed = 1
	cfg.TLS = pki[tlsutil.RoleServer]
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	eventually(t, "server leadership", srv.Leader)

	acfg := DefaultConfig()
	acfg.Servers, acfg.DataDir, acfg.Name = []string{srv.HTTPAddr()}, t.TempDir(), "n1"
	acfg.CPU, acfg.MemoryMB, acfg.Drivers = 2000, 1024, testDrivers(t)
	acfg.TLS = pki[tlsutil.RoleAgent]
	a, err := New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })

	cc := pki[tlsutil.RoleClient]
	c, err := api.NewClient(api.Config{Address: srv.HTTPAddr(),
		TLS: &api.TLSConfig{CACert: cc.CAFile, ClientCert: cc.CertFile, ClientKey: cc.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventually(t, "node ready", func() bool {
		n, _, err := c.Node(ctx, a.NodeID(), nil)
		return err == nil && n.Status == structs.NodeStatusReady
	})
	job := &structs.Job{Name: "hello", Type: structs.JobTypeService, Count: 1, Driver: "exec",
		Config:    map[string]any{"command": "/bin/sh", "args": []any{"-c", `echo "hi from $GANTRY_JOB"; sleep 300`}},
		Resources: structs.Resources{CPU: 100, MemoryMB: 32}}
	if _, err := c.RegisterJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.StopJob(ctx, "hello", false) })
	var alloc *structs.Allocation
	eventually(t, "allocation running", func() bool {
		allocs, _, err := c.JobAllocations(ctx, "hello", nil)
		if err != nil || len(allocs) != 1 {
			return false
		}
		alloc = allocs[0]
		return alloc.ClientStatus == structs.AllocClientRunning && alloc.NodeID == a.NodeID()
	})
	eventually(t, "log through the server", func() bool {
		rc, err := c.AllocLogs(ctx, alloc.ID, api.LogOptions{})
		if err != nil {
			return false
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b) == "hi from hello\n"
	})

	// The agent's own log endpoint: servers only.
	logURL := "https://" + a.HTTPAddr() + "/v1/agent/allocation/" + alloc.ID + "/logs"
	for _, tc := range []struct {
		role tlsutil.Role
		want int
	}{
		{tlsutil.RoleServer, http.StatusOK},
		{tlsutil.RoleAgent, http.StatusForbidden},
		{tlsutil.RoleClient, http.StatusForbidden},
	} {
		st, err := tlsutil.Load(pki[tc.role], tlsutil.RoleNone)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: st.ClientConfig(tlsutil.RoleAgent)}}
		resp, err := hc.Get(logURL)
		if err != nil {
			t.Fatalf("%s: %v", tc.role, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hc.CloseIdleConnections()
		if resp.StatusCode != tc.want {
			t.Errorf("agent log endpoint as %s: %d %s, want %d", tc.role, resp.StatusCode, b, tc.want)
		}
		if tc.want == http.StatusForbidden && !strings.Contains(string(b), "servers only") {
			t.Errorf("refusal does not say why: %s", b)
		}
	}
	// Without a certificate the agent refuses the connection.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := noCert.Get(logURL); err == nil {
		resp.Body.Close()
		t.Fatalf("agent answered a caller without a certificate: %d", resp.StatusCode)
	}
	noCert.CloseIdleConnections()
}
