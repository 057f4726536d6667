package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

// tlsFiles are the CA and certificates `gantry tls` made in dir.
type tlsFiles struct {
	dir string
	ca  string
}

func (f tlsFiles) cert(role string) (cert, key string) {
	return filepath.Join(f.dir, "global-"+role+"-gantry.pem"), filepath.Join(f.dir, "global-"+role+"-gantry-key.pem")
}

// flags are the TLS flags of a server or an agent of role.
func (f tlsFiles) flags(role string) []string {
	cert, key := f.cert(role)
	return []string{"--ca-file", f.ca, "--cert-file", cert, "--key-file", key}
}

// env is a CLI environment with the client certificate.
func (f tlsFiles) env(addr string) []string {
	cert, key := f.cert("client")
	return append(os.Environ(), "GANTRY_ADDR="+addr, "GANTRY_CACERT="+f.ca,
		"GANTRY_CLIENT_CERT="+cert, "GANTRY_CLIENT_KEY="+key)
}

// makeTLS runs `gantry tls ca create` and `gantry tls cert create` for a
// server, an agent and a client certificate into dir.
func makeTLS(t *testing.T, dir string) tlsFiles {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(gantryBin, append(args, "--dir", dir)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gantry %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("tls", "ca", "create")
	ca := filepath.Join(dir, "gantry-agent-ca.pem")
	for _, role := range []string{"server", "agent", "client"} {
		run("tls", "cert", "create", "--"+role, "--ca", ca, "--key", filepath.Join(dir, "gantry-agent-ca-key.pem"))
	}
	return tlsFiles{dir: dir, ca: ca}
}

// TestTLSClusterRunsJobs: three servers and two agents with mutual TLS on
// (certificates made by gantry tls) form a cluster, run a job submitted
// with the CLI and serve its logs through a server; a CLI without the
// client certificate gets nothing.
func TestTLSClusterRunsJobs(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killTasksUnder(dir) })
	files := makeTLS(t, filepath.Join(dir, "tls"))
	const n = 3
	var httpAddrs, raftAddrs []string
	for range n {
		httpAddrs = append(httpAddrs, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		raftAddrs = append(raftAddrs, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	}
	for i := range n {
		var join []string
		for j, a := range httpAddrs {
			if j != i {
				join = append(join, a)
			}
		}
		name := fmt.Sprintf("server-%d", i+1)
		startProc(t, name, append([]string{"server", "--name", name,
			"--data-dir", filepath.Join(dir, name),
			"--http-addr", httpAddrs[i], "--raft-addr", raftAddrs[i],
			"--bootstrap-expect", "3", "--join", strings.Join(join, ","),
			"--heartbeat-ttl", "10s", "--reconcile-interval", "5s"}, files.flags("server")...)...)
	}
	all := strings.Join(httpAddrs, ",")
	for i := range 2 {
		name := fmt.Sprintf("agent-%d", i+1)
		startProc(t, name, append([]string{"agent", "--servers", all, "--name", name,
			"--data-dir", filepath.Join(dir, name), "--cpu", "1000", "--memory", "1024",
			"--http-addr", "127.0.0.1:0"}, files.flags("agent")...)...)
	}

	cert, key := files.cert("client")
	client, err := api.NewClient(api.Config{Address: all,
		TLS: &api.TLSConfig{CACert: files.ca, ClientCert: cert, ClientKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testutil.WaitFor(t, 90*time.Second, 200*time.Millisecond, "2 ready nodes", func() (bool, string) {
		nodes, _, err := client.ListNodes(ctx, nil)
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range nodes {
			if n.Status == api.NodeStatusReady {
				ready++
			}
		}
		return ready == 2, fmt.Sprintf("%d ready of %d", ready, len(nodes))
	})

	gantry := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(gantryBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Each server answers: the CLI reaches all three over TLS. The followers
	// record themselves with the leader a moment after it is elected, so the
	// nodes can be ready before every server shows as alive.
	testutil.WaitFor(t, 60*time.Second, 200*time.Millisecond, "3 alive servers", func() (bool, string) {
		out, err := gantry(files.env(all), "server", "members")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		return strings.Count(out, "alive") == 3, out
	})

	spec := fmt.Sprintf(`name: hello
type: service
count: 2
placement: spread
resources: {cpu: 100, memory_mb: 32}
driver: exec
config:
  command: /bin/sh
  args: ["-c", "echo hello-over-tls; while true; do sleep 1; done"]
env:
  E2E_DIR: %s
`, dir)
	file := filepath.Join(dir, "hello.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	// Through the third server: usually a follower, which forwards.
	if out, err := gantry(files.env(httpAddrs[2]), "job", "run", file); err != nil || !strings.Contains(out, "running") {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	var allocs []*api.Allocation
	testutil.WaitFor(t, 60*time.Second, 200*time.Millisecond, "2 running copies on 2 nodes", func() (bool, string) {
		allocs, _, err = client.JobAllocations(ctx, "hello", nil)
		if err != nil {
			return false, err.Error()
		}
		nodes := map[string]bool{}
		for _, a := range allocs {
			if a.ClientStatus == api.AllocClientRunning {
				nodes[a.NodeID] = true
			}
		}
		return len(nodes) == 2, fmt.Sprint(len(allocs), " allocations")
	})
	// Logs: CLI to a server, server to the agent, both over TLS.
	testutil.WaitFor(t, 30*time.Second, 200*time.Millisecond, "the task's log", func() (bool, string) {
		out, err := gantry(files.env(httpAddrs[0]), "alloc", "logs", allocs[0].ID)
		return err == nil && strings.Contains(out, "hello-over-tls"), out
	})

	// Without the client certificate: plain HTTP, or TLS without a
	// certificate, is refused.
	if out, err := gantry(append(os.Environ(), "GANTRY_ADDR="+httpAddrs[0]), "job", "list"); err == nil {
		t.Fatalf("job list over plain HTTP succeeded:\n%s", out)
	}
	if out, err := gantry(append(os.Environ(), "GANTRY_ADDR="+httpAddrs[0], "GANTRY_CACERT="+files.ca), "job", "list"); err == nil {
		t.Fatalf("job list without a client certificate succeeded:\n%s", out)
	}
	// A client certificate cannot register a node.
	if _, err := client.RegisterNode(ctx, &api.Node{ID: "c0ffee00-0000-4000-8000-000000000000", Name: "fake",
		Capacity: api.Resources{CPU: 1000, MemoryMB: 1024}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a client certificate registered a node: %v", err)
	}
	if out, err := gantry(files.env(all), "job", "stop", "hello"); err != nil {
		t.Fatalf("job stop: %v\n%s", err, out)
	}
}

// TestTLSReloadOnSIGHUP: a server given SIGHUP serves a rotated certificate
// to new connections; a bad file keeps the rotated one, with an error in
// the log saying why.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	files := makeTLS(t, filepath.Join(dir, "tls"))
	// The server reads its certificate from files the test replaces.
	live := filepath.Join(dir, "live")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	liveCert, liveKey := filepath.Join(live, "server.pem"), filepath.Join(live, "server-key.pem")
	install := func(cert, key string) {
		t.Helper()
		for src, dst := range map[string]string{cert: liveCert, key: liveKey} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			// Write then rename: the server never reads half a file.
			if err := os.WriteFile(dst+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dst+".new", dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(files.cert("server"))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startProc(t, "server", "server", "--data-dir", filepath.Join(dir, "data"),
		"--http-addr", addr, "--raft-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--ca-file", files.ca, "--cert-file", liveCert, "--key-file", liveKey)

	clientCert, clientKey := files.cert("client")
	kp, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	// served returns the certificate the server presents to a new
	// connection (the test checks it by serial, not by trust).
	served := func() (*x509.Certificate, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{kp}}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/v1/status/leader")
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0], nil
	}
	var first *x509.Certificate
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "the server's API", func() (bool, string) {
		first, err = served()
		return err == nil, fmt.Sprint(err)
	})

	// Rotate: a new server certificate from the same CA.
	next := filepath.Join(dir, "next")
	if err := os.MkdirAll(next, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gantryBin, "tls", "cert", "create", "--server", "--dir", next,
		"--ca", files.ca, "--key", filepath.Join(files.dir, "gantry-agent-ca-key.pem"),
		"--additional-dnsname", "rotated.gantry.example").CombinedOutput()
	if err != nil {
		t.Fatalf("tls cert create: %v\n%s", err, out)
	}
	install(filepath.Join(next, "global-server-gantry.pem"), filepath.Join(next, "global-server-gantry-key.pem"))
	if err := srv.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var second *x509.Certificate
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "the rotated certificate on a new connection", func() (bool, string) {
		second, err = served()
		if err != nil {
			return false, err.Error()
		}
		return second.SerialNumber.Cmp(first.SerialNumber) != 0, "serial " + second.SerialNumber.Text(16)
	})
	if len(second.DNSNames) < 3 || second.DNSNames[2] != "rotated.gantry.example" {
		t.Fatalf("the new certificate is not the rotated one: %v", second.DNSNames)
	}

	// A client certificate is not a server's: refused, the rotated one kept.
	install(files.cert("client"))
	if err := srv.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "the failed reload in the log", func() (bool, string) {
		return strings.Contains(srv.Out.String(), "TLS reload failed"), ""
	})
	if !strings.Contains(srv.Out.String(), "does not name server.global.gantry") {
		t.Errorf("the log does not say why the reload failed:\n%s", testutil.Tail(srv.Out.String(), 2000))
	}
	third, err := served()
	if err != nil {
		t.Fatal(err)
	}
	if third.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatal("a failed reload changed the served certificate")
	}
}
