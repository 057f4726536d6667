package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// testPKI is a CA with a certificate of each role, and another CA with the
// same names (an attacker's, or another cluster's).
type testPKI struct {
	cfg   map[tlsutil.Role]tlsutil.Config
	other map[tlsutil.Role]tlsutil.Config
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	all := []tlsutil.Role{tlsutil.RoleServer, tlsutil.RoleAgent, tlsutil.RoleClient}
	cfg, err := tlsutil.CreateBundle(t.TempDir(), "global", all...)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsutil.CreateBundle(t.TempDir(), "global", all...)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{cfg: cfg, other: other}
}

// caller is an HTTP client presenting cert (nil: none) whatever the server
// asks for, and trusting any server: it stands for a hostile client, so
// what is tested is the server's refusal.
func caller(t testing.TB, cert *tlsutil.Config) *http.Client {
	t.Helper()
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	if cert != nil {
		kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// tlsAPIClient is an API client as the CLI builds one, with cert's files.
func tlsAPIClient(t testing.TB, addr string, cert tlsutil.Config) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: addr, TLS: &api.TLSConfig{
		CACert: cert.CAFile, ClientCert: cert.CertFile, ClientKey: cert.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call sends one request and returns the status, or the error of a
// connection the server refused.
func call(hc *http.Client, method, url, body string, header map[string]string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// routePath turns a route pattern into a request path.
func routePath(route string) (method, path string) {
	method, path, _ = strings.Cut(route, " ")
	return method, strings.ReplaceAll(path, "{id}", "n1")
}

// refused: a TLS handshake the server refused, as the client sees it.
func refused(err error) bool {
	for _, s := range []string{"remote error", "use of closed network connection", "connection reset by peer", "broken pipe", "EOF"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// TestTLSRefusesCallers is the acceptance matrix of the API with TLS on:
// no certificate, another CA's certificate and plain HTTP are refused at
// the connection; a client certificate cannot use the agents' or the
// servers' routes, nor pose as a forwarding server; an agent certificate
// cannot join servers.
func TestTLSRefusesCallers(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t)
	cfg.TLS = p.cfg[tlsutil.RoleServer]
	s, _ := startServer(t, cfg)
	base := "https://" + s.HTTPAddr()
	client, agent, server := p.cfg[tlsutil.RoleClient], p.cfg[tlsutil.RoleAgent], p.cfg[tlsutil.RoleServer]
	otherServer := p.other[tlsutil.RoleServer]

	t.Run("connection", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			hc   *http.Client
			url  string
		}{
			{"no certificate", caller(t, nil), base},
			{"certificate of another CA", caller(t, &otherServer), base},
		} {
			_, err := call(tc.hc, "GET", tc.url+"/v1/jobs", "", nil)
			// With TLS 1.3 the client may send its request before the
			// server's alert arrives: it then sees the connection closed
			// or reset instead of the alert. No answer in every case.
			if err == nil || !refused(err) {
				t.Errorf("%s: %v, want the server to refuse the handshake", tc.name, err)
			}
		}
		code, err := call(&http.Client{}, "GET", "http://"+s.HTTPAddr()+"/v1/jobs", "", nil)
		if err != nil || code != http.StatusBadRequest {
			t.Errorf("plain HTTP: %d %v, want 400 (an HTTP request to an HTTPS server)", code, err)
		}
	})

	roles := map[tlsutil.Role]*http.Client{
		tlsutil.RoleClient: caller(t, &client),
		tlsutil.RoleAgent:  caller(t, &agent),
		tlsutil.RoleServer: caller(t, &server),
	}
	t.Run("routes", func(t *testing.T) {
		for route, allowed := range routeRoles {
			method, path := routePath(route)
			for role, hc := range roles {
				// An unparsable body: a caller let through gets 400 (or
				// 404), never a change.
				code, err := call(hc, method, base+path, "not json", nil)
				if err != nil {
					t.Fatalf("%s as %s: %v", route, role, err)
				}
				if want := slices.Contains(allowed, role); want == (code == http.StatusForbidden) {
					t.Errorf("%s as %s: %d (allowed: %v)", route, role, code, want)
				}
			}
		}
		// Everything else takes any role (ACLs will narrow it).
		for _, path := range []string{"/v1/jobs", "/v1/nodes", "/metrics", "/v1/status/self"} {
			if code, err := call(roles[tlsutil.RoleClient], "GET", base+path, "", nil); err != nil || code != http.StatusOK {
				t.Errorf("GET %s as client: %d %v", path, code, err)
			}
		}
	})

	t.Run("forwarding headers", func(t *testing.T) {
		cases := []struct {
			name   string
			as     tlsutil.Role
			route  string
			header map[string]string
			want   int // 0: anything but 403
		}{
			{"client claims to be forwarded", tlsutil.RoleClient, "GET /v1/jobs", map[string]string{api.ForwardHopsHeader: "1"}, http.StatusForbidden},
			{"client forwards as a server", tlsutil.RoleClient, "POST /v1/operator/raft/join", map[string]string{api.ForwardedRoleHeader: "server"}, http.StatusForbidden},
			{"agent forwards as a server", tlsutil.RoleAgent, "POST /v1/operator/raft/join", map[string]string{api.ForwardedRoleHeader: "server"}, http.StatusForbidden},
			{"agent forwards as an agent", tlsutil.RoleAgent, "POST /v1/node/register", map[string]string{api.ForwardedRoleHeader: "agent"}, http.StatusForbidden},
			{"server forwards a client's registration", tlsutil.RoleServer, "POST /v1/node/register", map[string]string{api.ForwardedRoleHeader: "client"}, http.StatusForbidden},
			{"server forwards a client's join", tlsutil.RoleServer, "POST /v1/operator/raft/join", map[string]string{api.ForwardedRoleHeader: "client"}, http.StatusForbidden},
			{"server forwards an agent's registration", tlsutil.RoleServer, "POST /v1/node/register", map[string]string{api.ForwardedRoleHeader: "agent", api.ForwardHopsHeader: "1"}, 0},
			{"server forwards a made-up role", tlsutil.RoleServer, "GET /v1/jobs", map[string]string{api.ForwardedRoleHeader: "root"}, http.StatusBadRequest},
		}
		for _, tc := range cases {
			method, path := routePath(tc.route)
			code, err := call(roles[tc.as], method, base+path, "not json", tc.header)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if (tc.want == 0 && code == http.StatusForbidden) || (tc.want != 0 && code != tc.want) {
				t.Errorf("%s: %d, want %d (0: not 403)", tc.name, code, tc.want)
			}
		}
	})

	t.Run("api client", func(t *testing.T) {
		// The CLI's client: https by default, the server's name checked.
		c := tlsAPIClient(t, s.HTTPAddr(), client)
		if _, err := c.RegisterJob(bg, mockJob("web", 1)); err != nil {
			t.Fatalf("client certificate registering a job: %v", err)
		}
		if _, err := c.RegisterNode(bg, fakeNode("n1", 1000, 1024)); !isStatus(err, http.StatusForbidden) {
			t.Fatalf("client certificate registering a node: %v, want 403", err)
		}
		if _, err := tlsAPIClient(t, s.HTTPAddr(), agent).RegisterNode(bg, fakeNode("n1", 1000, 1024)); err != nil {
			t.Fatalf("agent certificate registering a node: %v", err)
		}
	})
}

func isForbidden(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden
}

// raftAppend sends one AppendEntries RPC, with a term older than any
// leader's (so the server answers and changes nothing), to s's Raft over
// a transport dialing with cli (nil: plain TCP).
func raftAppend(t *testing.T, s *Server, cli *tls.Config) (*raft.AppendEntriesResponse, error) {
	t.Helper()
	var srv *tls.Config
	if cli != nil {
		srv = &tls.Config{MinVersion: tls.VersionTLS12} // its listener is never dialed
	}
	stream, err := newTrackingStream("127.0.0.1:0", nil, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 1, Timeout: 30 * time.Second, Logger: hclog.NewNullLogger()})
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries(raft.ServerID(s.id), s.transport.LocalAddr(), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte(stream.Addr().String())},
		Term:      0,
	}, &resp)
	return &resp, err
}

// dialerAs is a Raft dialer presenting cert: as a server would (checking
// the peer) when trusted, or whatever the peer asks (hostile) otherwise.
func dialerAs(t *testing.T, cert tlsutil.Config, hostile bool) *tls.Config {
	t.Helper()
	if hostile {
		return caller(t, &cert).Transport.(*http.Transport).TLSClientConfig
	}
	st, err := tlsutil.Load(cert, tlsutil.RoleNone)
	if err != nil {
		t.Fatal(err)
	}
	return st.ClientConfig(tlsutil.RoleServer)
}

// TestTLSRaftRefusesNonServers: Raft over TLS answers a server's
// certificate only; a client or agent certificate, another CA's server
// certificate, no certificate and plain TCP get no answer.
func TestTLSRaftRefusesNonServers(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t)
	cfg.TLS = p.cfg[tlsutil.RoleServer]
	s, _ := startServer(t, cfg)
	cases := []struct {
		name string
		cli  *tls.Config
		ok   bool
	}{
		{"server certificate", dialerAs(t, p.cfg[tlsutil.RoleServer], false), true},
		{"client certificate as a server", dialerAs(t, p.cfg[tlsutil.RoleClient], true), false},
		{"agent certificate as a server", dialerAs(t, p.cfg[tlsutil.RoleAgent], true), false},
		{"server certificate of another CA", dialerAs(t, p.other[tlsutil.RoleServer], true), false},
		{"no certificate", caller(t, nil).Transport.(*http.Transport).TLSClientConfig, false},
		{"plain TCP", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := raftAppend(t, s, tc.cli)
			if tc.ok {
				if err != nil || resp.Term == 0 || resp.Success {
					t.Fatalf("server certificate: %v (term %d, success %v); want a refusal of the old term", err, resp.Term, resp.Success)
				}
				return
			}
			if err == nil {
				t.Fatalf("Raft answered (term %d)", resp.Term)
			}
		})
	}
	// The server that refused them still leads its cluster of one.
	if !s.Leader() {
		t.Fatal("the server lost its leadership")
	}
}

// TestTLSCluster: three servers with TLS find each other, bootstrap and
// replicate over TLS; a follower forwards a client's write and an agent's
// registration with the caller's role, and refuses a client's
// registration itself.
func TestTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	p := newTestPKI(t)
	tc := newTestCluster(t, 3, func(c *Config) { c.TLS = p.cfg[tlsutil.RoleServer] })
	l := tc.leader()
	f := tc.follower(l)
	fAddr := tc.cfgs[f].HTTPAddr
	client := tlsAPIClient(t, fAddr, p.cfg[tlsutil.RoleClient])
	agent := tlsAPIClient(t, fAddr, p.cfg[tlsutil.RoleAgent])
	// Peer probes (GET /v1/status/self of each server) go over TLS too.
	tc.waitMembers(client, 3)

	retryUnavailable(t, "agent registers a node through a follower", func() error {
		_, err := agent.RegisterNode(bg, fakeNode("n1", 4000, 4096))
		return err
	})
	retryUnavailable(t, "client registers a job through a follower", func() error {
		_, err := client.RegisterJob(bg, mockJob("web", 2))
		return err
	})
	waitLive(t, client, "web", 2)
	if fwd := counterValue(t, tc.servers[f], "gantry_http_forwarded_total"); fwd == 0 {
		t.Error("nothing was forwarded: the test did not test forwarding")
	}
	if _, err := client.RegisterNode(bg, fakeNode("n2", 4000, 4096)); !isForbidden(err) {
		t.Fatalf("client registering a node through a follower: %v, want 403", err)
	}
	// The leader sees the agent's role, not the forwarding server's: a
	// client's registration forwarded by a server is refused there too.
	hc := caller(t, &tlsutil.Config{CertFile: p.cfg[tlsutil.RoleServer].CertFile, KeyFile: p.cfg[tlsutil.RoleServer].KeyFile})
	method, path := routePath("POST /v1/node/register")
	code, err := call(hc, method, "https://"+tc.cfgs[l].HTTPAddr+path, "not json",
		map[string]string{api.ForwardedRoleHeader: "client", api.ForwardHopsHeader: "1"})
	if err != nil || code != http.StatusForbidden {
		t.Fatalf("a client's registration forwarded to the leader: %d %v, want 403", code, err)
	}
}

// TestTLSReload: ReloadTLS serves a rotated certificate to new connections
// and keeps the old one when the new files are bad.
func TestTLSReload(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.TLS = p.cfg[tlsutil.RoleServer]
	cfg.TLS.CertFile, cfg.TLS.KeyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	install := func(certPEM, keyPEM []byte) {
		t.Helper()
		if err := os.WriteFile(cfg.TLS.CertFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg.TLS.KeyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	install(read(p.cfg[tlsutil.RoleServer].CertFile), read(p.cfg[tlsutil.RoleServer].KeyFile))
	s, _ := startServer(t, cfg)

	served := func() *x509.Certificate {
		t.Helper()
		// A new client each time: a new connection.
		hc := caller(t, &tlsutil.Config{CertFile: p.cfg[tlsutil.RoleClient].CertFile, KeyFile: p.cfg[tlsutil.RoleClient].KeyFile})
		resp, err := hc.Get("https://" + s.HTTPAddr() + "/v1/status/leader")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0]
	}
	first := served()

	caCert, caKey := filepath.Join(filepath.Dir(p.cfg[tlsutil.RoleServer].CAFile), tlsutil.CAFile),
		filepath.Join(filepath.Dir(p.cfg[tlsutil.RoleServer].CAFile), tlsutil.CAKeyFile)
	certPEM, keyPEM, err := tlsutil.GenerateCert(tlsutil.CertOptions{Role: tlsutil.RoleServer, Region: "global",
		DNSNames: []string{"rotated.example"}, CACert: read(caCert), CAKey: read(caKey)})
	if err != nil {
		t.Fatal(err)
	}
	install(certPEM, keyPEM)
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	second := served()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 || !slices.Contains(second.DNSNames, "rotated.example") {
		t.Fatal("after ReloadTLS new connections still get the old certificate")
	}

	// A client certificate is no server's: refused, the rotated one kept.
	install(read(p.cfg[tlsutil.RoleClient].CertFile), read(p.cfg[tlsutil.RoleClient].KeyFile))
	if err := s.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "does not name server.global.gantry") {
		t.Fatalf("reloading a client certificate: %v", err)
	}
	if got := served(); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatal("a failed reload changed the served certificate")
	}
}

func TestSecurityWarnings(t *testing.T) {
	cases := []struct {
		name       string
		http, raft string
		tls, acl   bool
		warn       []string // a substring of each warning expected, in order
	}{
		{"loopback", "127.0.0.1:4646", "127.0.0.1:4647", false, false, nil},
		{"localhost", "localhost:4646", "[::1]:4647", false, false, nil},
		{"all interfaces", "0.0.0.0:4646", "127.0.0.1:4647", false, false, []string{"TLS is off", "ACLs are off"}},
		{"empty host", ":4646", "127.0.0.1:4647", false, true, []string{"TLS is off and this server listens beyond loopback (http_addr :4646)"}},
		{"routable raft", "127.0.0.1:4646", "10.0.0.1:4647", false, true, []string{"raft_addr 10.0.0.1:4647"}},
		{"host name", "gantry.example:4646", "10.0.0.1:4647", false, true, []string{"http_addr gantry.example:4646, raft_addr 10.0.0.1:4647"}},
		{"routable with TLS, no ACLs", "0.0.0.0:4646", "10.0.0.1:4647", true, false, []string{"ACLs are off"}},
		{"routable with TLS and ACLs", "0.0.0.0:4646", "10.0.0.1:4647", true, true, nil},
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		if tc.tls {
			cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile = "ca", "c", "k"
		}
		cfg.ACL.Enabled = tc.acl
		cfg.HTTPAddr, cfg.RaftAddr = tc.http, tc.raft
		got := securityWarnings(cfg)
		if len(got) != len(tc.warn) {
			t.Errorf("%s: warnings %q, want %d", tc.name, got, len(tc.warn))
			continue
		}
		for i, w := range tc.warn {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %d %q, want one naming %q", tc.name, i, got[i], w)
			}
		}
	}
}

// TestTLSConfigErrors: a server refuses to start with TLS files that its
// peers would refuse, saying which.
func TestTLSConfigErrors(t *testing.T) {
	p := newTestPKI(t)
	cases := []struct {
		name string
		tls  tlsutil.Config
		want string
	}{
		{"agent certificate", p.cfg[tlsutil.RoleAgent], "does not name server.global.gantry"},
		{"no key", func() tlsutil.Config { c := p.cfg[tlsutil.RoleServer]; c.KeyFile = ""; return c }(), "tls.key_file: is required"},
		{"CA only", func() tlsutil.Config { c := p.cfg[tlsutil.RoleServer]; c.CertFile, c.KeyFile = "", ""; return c }(), "tls.cert_file: is required"},
	}
	for _, tc := range cases {
		cfg := testConfig(t)
		cfg.TLS = tc.tls
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
