package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pki is a CA in its own directory with a certificate of each role (and
// any extra made with cert).
type pki struct {
	dir    string
	caCert string
	caKey  string
	cfg    map[Role]Config
	certN  int
	region string
}

func newPKI(t *testing.T, region string) *pki {
	t.Helper()
	dir := t.TempDir()
	cfgs, err := CreateBundle(dir, region, RoleServer, RoleAgent, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{dir: dir, caCert: filepath.Join(dir, CAFile), caKey: filepath.Join(dir, CAKeyFile),
		cfg: cfgs, region: region}
}

// cert makes another certificate of role in a fresh subdirectory.
func (p *pki) cert(t *testing.T, o CertOptions) Config {
	t.Helper()
	p.certN++
	dir := filepath.Join(p.dir, "extra", string(rune('a'+p.certN)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if o.Region == "" {
		o.Region = p.region
	}
	cert, key, err := CreateCert(dir, p.caCert, p.caKey, o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Region = p.caCert, cert, key, p.region
	return cfg
}

func mustLoad(t *testing.T, cfg Config, self Role) *Store {
	t.Helper()
	s, err := Load(cfg, self)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshake connects a client with cli to a listener with srv over
// loopback TCP and reports each side's error. The server writes one byte
// after its handshake and the client reads it, so a refusal by either
// side (in TLS 1.3 the server's refusal of a client certificate arrives
// after the client's handshake) shows as an error on both.
func handshake(t *testing.T, srv, cli *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		_ = tc.SetDeadline(time.Now().Add(time.Minute)) // only against a hang
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte("k"))
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, cli)
	_ = tc.SetDeadline(time.Now().Add(time.Minute))
	cliErr = tc.Handshake()
	if cliErr == nil {
		_, cliErr = io.ReadFull(tc, make([]byte, 1))
	}
	return <-done, cliErr
}

// bareClient is a client config that trusts p's CA the standard way and
// presents cert (nil: none).
func bareClient(t *testing.T, p *pki, cert *Config) *tls.Config {
	t.Helper()
	pool, err := readCAs(p.caCert)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: RoleName(RoleServer, p.region), MinVersion: tls.VersionTLS12}
	if cert != nil {
		kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Always send it (a Go client sends only a certificate from a
		// CA the server lists), as a hostile client would.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	return cfg
}

// TestListenerRefusesCallers is the mTLS acceptance matrix at the TLS
// layer: who may connect to a listener that takes any role, and to one
// that takes servers only (Raft).
func TestListenerRefusesCallers(t *testing.T) {
	p := newPKI(t, "global")
	other := newPKI(t, "global") // another CA with the same names
	srv := mustLoad(t, p.cfg[RoleServer], RoleServer)
	wrongRegion := p.cert(t, CertOptions{Role: RoleServer, Region: "eu"})
	client, agent, server := p.cfg[RoleClient], p.cfg[RoleAgent], p.cfg[RoleServer]
	otherServer := other.cfg[RoleServer]

	cases := []struct {
		name    string
		allowed []Role
		cli     *tls.Config
		ok      bool
		srvErr  string // part of the listener's error
	}{
		{"any role: client cert", nil, bareClient(t, p, &client), true, ""},
		{"any role: agent cert", nil, bareClient(t, p, &agent), true, ""},
		{"any role: server cert", nil, bareClient(t, p, &server), true, ""},
		{"any role: no cert", nil, bareClient(t, p, nil), false, "didn't provide a certificate"},
		{"any role: cert of another CA", nil, bareClient(t, p, &otherServer), false, "certificate signed by unknown authority"},
		{"any role: cert of another region", nil, bareClient(t, p, &wrongRegion), false, "names no gantry role of region global"},
		{"servers only: server cert", []Role{RoleServer}, bareClient(t, p, &server), true, ""},
		{"servers only: client cert", []Role{RoleServer}, bareClient(t, p, &client), false, "a client certificate may not connect here (server only)"},
		{"servers only: agent cert", []Role{RoleServer}, bareClient(t, p, &agent), false, "an agent certificate may not connect here"},
		{"servers only: no cert", []Role{RoleServer}, bareClient(t, p, nil), false, "didn't provide a certificate"},
		{"servers only: cert of another CA", []Role{RoleServer}, bareClient(t, p, &otherServer), false, "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srvErr, cliErr := handshake(t, srv.ServerConfig(tc.allowed...), tc.cli)
			if tc.ok {
				if srvErr != nil || cliErr != nil {
					t.Fatalf("refused: listener %v, client %v", srvErr, cliErr)
				}
				return
			}
			if srvErr == nil || cliErr == nil {
				t.Fatalf("accepted: listener %v, client %v", srvErr, cliErr)
			}
			if !strings.Contains(srvErr.Error(), tc.srvErr) {
				t.Errorf("listener error %q does not say %q", srvErr, tc.srvErr)
			}
		})
	}
}

// TestDialerChecksServer: a dialer of a server refuses a peer presenting
// an agent or client certificate, or one of another CA, unless hostname
// verification is off (then only the CA is checked).
func TestDialerChecksServer(t *testing.T) {
	p := newPKI(t, "global")
	other := newPKI(t, "global")
	dialer := mustLoad(t, p.cfg[RoleAgent], RoleAgent)
	noVerify := p.cfg[RoleAgent]
	noVerify.VerifyServerHostname = false
	dialerNoVerify := mustLoad(t, noVerify, RoleAgent)
	cases := []struct {
		name   string
		srv    *Store
		dialer *Store
		peer   Role
		ok     bool
		cliErr string
	}{
		{"server as server", mustLoad(t, p.cfg[RoleServer], RoleServer), dialer, RoleServer, true, ""},
		{"agent posing as server", mustLoad(t, p.cfg[RoleAgent], RoleAgent), dialer, RoleServer, false, "not server.global.gantry"},
		{"server of another CA", mustLoad(t, other.cfg[RoleServer], RoleServer), dialer, RoleServer, false, "unknown authority"},
		{"agent as agent", mustLoad(t, p.cfg[RoleAgent], RoleAgent), dialer, RoleAgent, true, ""},
		{"server posing as agent", mustLoad(t, p.cfg[RoleServer], RoleServer), dialer, RoleAgent, false, "not agent.global.gantry"},
		{"no hostname check: agent as server", mustLoad(t, p.cfg[RoleAgent], RoleAgent), dialerNoVerify, RoleServer, true, ""},
		{"no hostname check: another CA", mustLoad(t, other.cfg[RoleServer], RoleServer), dialerNoVerify, RoleServer, false, "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srvErr, cliErr := handshake(t, tc.srv.ServerConfig(), tc.dialer.ClientConfig(tc.peer))
			if tc.ok {
				if srvErr != nil || cliErr != nil {
					t.Fatalf("refused: listener %v, dialer %v", srvErr, cliErr)
				}
				return
			}
			if cliErr == nil {
				t.Fatal("the dialer accepted the peer")
			}
			if !strings.Contains(cliErr.Error(), tc.cliErr) {
				t.Errorf("dialer error %q does not say %q", cliErr, tc.cliErr)
			}
		})
	}
}

// TestReload: a reloaded certificate is served to new connections; a bad
// new file keeps the old one, and says why.
func TestReload(t *testing.T) {
	p := newPKI(t, "global")
	dir := t.TempDir()
	cfg := p.cfg[RoleServer]
	cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	install := func(c Config) {
		t.Helper()
		for src, dst := range map[string]string{c.CertFile: cfg.CertFile, c.KeyFile: cfg.KeyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(p.cfg[RoleServer])
	s := mustLoad(t, cfg, RoleServer)
	client := mustLoad(t, p.cfg[RoleClient], RoleNone)
	served := func() *x509.Certificate {
		t.Helper()
		var got *x509.Certificate
		cc := client.ClientConfig(RoleServer)
		verify := cc.VerifyConnection
		cc.VerifyConnection = func(cs tls.ConnectionState) error {
			got = cs.PeerCertificates[0]
			return verify(cs)
		}
		if srvErr, cliErr := handshake(t, s.ServerConfig(), cc); srvErr != nil || cliErr != nil {
			t.Fatalf("handshake: %v / %v", srvErr, cliErr)
		}
		return got
	}
	first := served()
	if first.SerialNumber.Cmp(s.Certificate().SerialNumber) != 0 {
		t.Fatal("served certificate is not the loaded one")
	}

	rotated := p.cert(t, CertOptions{Role: RoleServer, DNSNames: []string{"rotated.example"}})
	install(rotated)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	second := served()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 || !containsName(second, "rotated.example") {
		t.Fatalf("after reload the old certificate is served (serial %v)", second.SerialNumber)
	}

	bad := []struct {
		name  string
		write func()
		want  string
	}{
		{"garbage cert", func() { _ = os.WriteFile(cfg.CertFile, []byte("not a cert"), 0o600) }, "tls.cert_file"},
		{"client cert", func() { install(p.cert(t, CertOptions{Role: RoleClient})) }, "does not name server.global.gantry"},
		{"cert of another CA", func() { install(newPKI(t, "global").cfg[RoleServer]) }, "does not verify against tls.ca_file"},
		{"key of another cert", func() {
			install(rotated)
			k, _ := os.ReadFile(p.cfg[RoleServer].KeyFile)
			_ = os.WriteFile(cfg.KeyFile, k, 0o600)
		}, "private key does not match"},
	}
	for _, b := range bad {
		b.write()
		err := s.Reload()
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "keeping the certificate loaded before") {
			t.Errorf("%s: Reload error %v, want one saying %q and that the old one is kept", b.name, err, b.want)
		}
		if got := served(); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
			t.Errorf("%s: a failed reload changed the served certificate", b.name)
		}
	}
}

func containsName(c *x509.Certificate, name string) bool {
	for _, n := range c.DNSNames {
		if n == name {
			return true
		}
	}
	return false
}

// TestReloadCA: a CA added to the bundle is trusted by new connections of
// existing configs (the dialer's check reads the CA of the moment).
func TestReloadCA(t *testing.T) {
	p := newPKI(t, "global")
	other := newPKI(t, "global")
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	caPEM, _ := os.ReadFile(p.caCert)
	if err := os.WriteFile(bundle, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := p.cfg[RoleAgent]
	cfg.CAFile = bundle
	dialer := mustLoad(t, cfg, RoleAgent)
	cc := dialer.ClientConfig(RoleServer) // one config, as an http.Transport keeps
	otherPEM, _ := os.ReadFile(other.caCert)
	both := filepath.Join(t.TempDir(), "both.pem")
	_ = os.WriteFile(both, append(append([]byte{}, caPEM...), otherPEM...), 0o644)
	srvCfg := other.cfg[RoleServer]
	srvCfg.CAFile = both // it trusts the dialer's CA from the start
	newServer := mustLoad(t, srvCfg, RoleServer)
	if _, cliErr := handshake(t, newServer.ServerConfig(), cc); cliErr == nil {
		t.Fatal("a server of a CA not in the bundle was accepted")
	}
	if err := os.WriteFile(bundle, append(caPEM, otherPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dialer.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, cliErr := handshake(t, newServer.ServerConfig(), cc); cliErr != nil {
		t.Fatalf("after adding its CA to the bundle: %v", cliErr)
	}
}

func TestLoadErrors(t *testing.T) {
	p := newPKI(t, "global")
	other := newPKI(t, "global")
	expired := p.cert(t, CertOptions{Role: RoleServer, Days: 1, Now: time.Now().Add(-48 * time.Hour)})
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(noPEM, []byte("nothing here\n"), 0o644)
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	cases := []struct {
		name string
		cfg  Config
		self Role
		want string
	}{
		{"off", DefaultConfig(), RoleServer, "no tls.ca_file"},
		{"missing CA", with(p.cfg[RoleServer], func(c *Config) { c.CAFile = filepath.Join(p.dir, "nope.pem") }), RoleServer, "tls.ca_file: open"},
		{"CA without PEM", with(p.cfg[RoleServer], func(c *Config) { c.CAFile = noPEM }), RoleServer, "no PEM certificate"},
		{"no cert for a server", with(p.cfg[RoleServer], func(c *Config) { c.CertFile, c.KeyFile = "", "" }), RoleServer, "tls.cert_file: is required"},
		{"agent cert for a server", p.cfg[RoleAgent], RoleServer, "does not name server.global.gantry"},
		{"client cert for an agent", p.cfg[RoleClient], RoleAgent, "does not name agent.global.gantry"},
		{"cert of another CA", with(other.cfg[RoleServer], func(c *Config) { c.CAFile = p.caCert }), RoleServer, "does not verify against"},
		{"expired", expired, RoleServer, "expired"},
		{"key mismatch", with(p.cfg[RoleServer], func(c *Config) { c.KeyFile = p.cfg[RoleAgent].KeyFile }), RoleServer, "private key does not match"},
		{"region of the names", with(p.cfg[RoleServer], func(c *Config) { c.Region = "eu" }), RoleServer, "does not name server.eu.gantry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cfg, tc.self)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error %v, want one saying %q", err, tc.want)
			}
		})
	}
	// A client may trust the CA without a certificate of its own.
	caOnly := DefaultConfig()
	caOnly.CAFile = p.caCert
	if _, err := Load(caOnly, RoleNone); err != nil {
		t.Errorf("CA-only client: %v", err)
	}
}

func TestValidate(t *testing.T) {
	full := Config{CAFile: "ca", CertFile: "c", KeyFile: "k", Region: "global"}
	with := func(f func(*Config)) Config { c := full; f(&c); return c }
	cases := []struct {
		name     string
		cfg      Config
		needCert bool
		want     []string // one substring per expected error; none = valid
	}{
		{"off", DefaultConfig(), true, nil},
		{"off with a bad region is off", Config{Region: "Bad"}, true, nil},
		{"full", full, true, nil},
		{"CA only, client", with(func(c *Config) { c.CertFile, c.KeyFile = "", "" }), false, nil},
		{"CA only, server", with(func(c *Config) { c.CertFile, c.KeyFile = "", "" }), true, []string{"tls.cert_file: is required with tls.ca_file"}},
		{"no CA", with(func(c *Config) { c.CAFile = "" }), true, []string{"tls.ca_file: is required"}},
		{"key without cert", with(func(c *Config) { c.CertFile = "" }), false, []string{"tls.cert_file: is required with tls.key_file"}},
		{"cert without key", with(func(c *Config) { c.KeyFile = "" }), false, []string{"tls.key_file: is required with tls.cert_file"}},
		{"bad region", with(func(c *Config) { c.Region = "Global." }), true, []string{"tls.region"}},
		{"empty region", with(func(c *Config) { c.Region = "" }), true, []string{"tls.region"}},
		{"everything", Config{KeyFile: "k", Region: "-"}, true, []string{"tls.ca_file", "tls.cert_file", "tls.region"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate(tc.needCert)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d errors, want %d: %v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestRoleOf(t *testing.T) {
	cert := func(names ...string) *x509.Certificate { return &x509.Certificate{DNSNames: names} }
	cases := []struct {
		cert   *x509.Certificate
		region string
		want   Role
	}{
		{nil, "global", RoleNone},
		{cert("localhost"), "global", RoleNone},
		{cert("client.global.gantry", "localhost"), "global", RoleClient},
		{cert("agent.global.gantry"), "global", RoleAgent},
		{cert("server.global.gantry"), "global", RoleServer},
		{cert("server.global.gantry"), "eu", RoleNone},
		{cert("server.eu.gantry"), "eu", RoleServer},
		{cert("server.global.gantry.evil.example", "xserver.global.gantry"), "global", RoleNone},
		// Two roles: the most trusted (only the CA's holder makes such a one).
		{cert("client.global.gantry", "server.global.gantry"), "global", RoleServer},
	}
	for _, tc := range cases {
		if got := RoleOf(tc.cert, tc.region); got != tc.want {
			var names []string
			if tc.cert != nil {
				names = tc.cert.DNSNames
			}
			t.Errorf("RoleOf(%v, %s) = %q, want %q", names, tc.region, got, tc.want)
		}
	}
	if r, ok := RoleFromContext(t.Context()); ok || r != RoleNone {
		t.Errorf("empty context: %q %v", r, ok)
	}
	if r, ok := RoleFromContext(WithRole(t.Context(), RoleAgent)); !ok || r != RoleAgent {
		t.Errorf("WithRole(agent): %q %v", r, ok)
	}
}

// parseCert reads the first certificate of a PEM file.
func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
