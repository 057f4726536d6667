package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// MinVersion is the oldest TLS version gantry speaks; Go negotiates 1.3
// whenever both ends have it (always, between gantry processes).
const MinVersion = tls.VersionTLS12

// Store holds the CA pool and this process's keypair, read from the files
// of a Config, and builds tls.Configs that read them at each handshake.
// Reload reads the files again and swaps them in atomically: connections
// made afterwards use the new ones, established connections keep theirs.
// All methods are safe for concurrent use.
type Store struct {
	cfg  Config
	self Role
	now  func() time.Time
	cur  atomic.Pointer[material]
}

// material is one consistent load of the files.
type material struct {
	pool *x509.CertPool
	cert *tls.Certificate // nil for a client with only the CA
	leaf *x509.Certificate
}

// Load validates cfg and reads its files. self is the role this process's
// own certificate must name (RoleServer for a server, RoleAgent for an
// agent; RoleNone checks no role and allows a CA-only client), so a
// certificate the peers would refuse is an error here, at start, rather
// than a stream of handshake failures later.
func Load(cfg Config, self Role) (*Store, error) {
	if !cfg.Enabled() {
		return nil, errors.New("tls: no tls.ca_file, tls.cert_file or tls.key_file is set")
	}
	if err := cfg.Validate(self != RoleNone); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, self: self, now: time.Now}
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// Config returns the configuration the store was loaded from.
func (s *Store) Config() Config { return s.cfg }

// Certificate returns the current certificate's leaf (nil for a CA-only
// client).
func (s *Store) Certificate() *x509.Certificate { return s.cur.Load().leaf }

// Reload reads the files again. On any error (a file missing or
// unreadable, a key that does not match, a certificate not from the CA or
// naming the wrong role, expired) the store keeps what it had and returns
// the error; on success new connections use the new files.
func (s *Store) Reload() error {
	m, err := s.load()
	if err != nil {
		return fmt.Errorf("%w (keeping the certificate loaded before)", err)
	}
	s.cur.Store(m)
	return nil
}

func (s *Store) load() (*material, error) {
	pool, err := readCAs(s.cfg.CAFile)
	if err != nil {
		return nil, err
	}
	m := &material{pool: pool}
	if s.cfg.CertFile == "" {
		return m, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls.cert_file %s: %w", s.cfg.CertFile, err)
		}
	}
	if s.self != RoleNone {
		want := RoleName(s.self, s.cfg.Region)
		if !slices.Contains(leaf.DNSNames, want) {
			return nil, fmt.Errorf("tls.cert_file %s does not name %s (it names %s), so peers would refuse it; "+
				"make one with `gantry tls cert create --%s --region %s`",
				s.cfg.CertFile, want, strings.Join(leaf.DNSNames, ", "), s.self, s.cfg.Region)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	// Usage as a client (every process dials) and, for servers and agents,
	// as a server: what the peers will check.
	usages := [][]x509.ExtKeyUsage{{x509.ExtKeyUsageClientAuth}}
	if s.self == RoleServer || s.self == RoleAgent {
		usages = append(usages, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	}
	for _, u := range usages {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: s.now(), KeyUsages: u})
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s does not verify against tls.ca_file %s for %s: %w",
				s.cfg.CertFile, s.cfg.CAFile, usageName(u[0]), err)
		}
	}
	m.cert, m.leaf = &cert, leaf
	return m, nil
}

func usageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "server authentication"
	}
	return "client authentication"
}

// readCAs reads every certificate of a PEM bundle.
func readCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// ServerConfig is the tls.Config of a listener: it presents the current
// certificate and requires a client certificate that chains to the
// current CA and names a role of the region, one of allowed (any role
// when allowed is empty). HTTP/2 is not offered: the API's long polls and
// streams are written for one request per connection.
func (s *Store) ServerConfig(allowed ...Role) *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.cur.Load()
			if m.cert == nil {
				return nil, errors.New("tls: this process has no certificate to serve")
			}
			return &tls.Config{
				MinVersion:   MinVersion,
				Certificates: []tls.Certificate{*m.cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    m.pool,
				VerifyConnection: func(cs tls.ConnectionState) error {
					return s.checkClientRole(cs, allowed)
				},
			}, nil
		},
	}
}

// checkClientRole refuses a verified client certificate that names no
// role of the region, or a role not allowed.
func (s *Store) checkClientRole(cs tls.ConnectionState, allowed []Role) error {
	role := PeerRole(&cs, s.cfg.Region)
	if role == RoleNone {
		name := "(none)"
		if len(cs.PeerCertificates) > 0 {
			name = strings.Join(cs.PeerCertificates[0].DNSNames, ", ")
		}
		return fmt.Errorf("tls: client certificate names no gantry role of region %s (%s, %s or %s); it names %s",
			s.cfg.Region, RoleName(RoleServer, s.cfg.Region), RoleName(RoleAgent, s.cfg.Region),
			RoleName(RoleClient, s.cfg.Region), name)
	}
	if len(allowed) > 0 && !slices.Contains(allowed, role) {
		return fmt.Errorf("tls: %s %s certificate may not connect here (%s only)", article(role), role, joinRoles(allowed))
	}
	return nil
}

// article is "a" or "an" before a role's name.
func article(r Role) string {
	if r == RoleAgent {
		return "an"
	}
	return "a"
}

func joinRoles(rs []Role) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, ", ")
}

// ClientConfig is the tls.Config of a dialer of a peer of role peer: it
// presents the current certificate and checks the peer's against the
// current CA and, with VerifyServerHostname, that it names peer's role
// (server.<region>.gantry). The check is done in VerifyConnection rather
// than by crypto/tls's own (which it replaces) so that a reloaded CA
// applies to the next connection of a long-lived http.Transport.
func (s *Store) ClientConfig(peer Role) *tls.Config {
	name := ""
	if s.cfg.VerifyServerHostname {
		name = RoleName(peer, s.cfg.Region)
	}
	return s.ClientConfigName(name)
}

// ClientConfigName is ClientConfig checking for the DNS name name instead
// of a role's ("" checks the chain only). The CLI uses it with
// --tls-server-name.
func (s *Store) ClientConfigName(name string) *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		// Verification is not skipped: VerifyConnection does it, with
		// the CA of the moment (see ClientConfig).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyServer(cs, name)
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := s.cur.Load(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
	}
}

// verifyServer checks the certificate a server presented: its chain to
// the current CA, server authentication, and name unless it is "".
func (s *Store) verifyServer(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         s.cur.Load().pool,
		Intermediates: inter,
		DNSName:       name,
		CurrentTime:   s.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tls: the server's certificate: %w", err)
	}
	return nil
}
