// Package tlsutil is gantry's mutual TLS: the configuration every process
// shares (a CA bundle, its own certificate and key, the region of the
// certificates' names), the role a certificate grants, tls.Configs for
// listeners and dialers that read a keypair swapped atomically on reload,
// and the CA and certificates `gantry tls` makes.
//
// Roles. A certificate made by `gantry tls cert create` names one role in
// its DNS subject alternative names, as Nomad's and Consul's do:
// server.<region>.gantry, agent.<region>.gantry or client.<region>.gantry.
// A listener accepts only certificates from its CA that name a role, and
// says which roles it takes (Raft: servers only); the HTTP API checks the
// role per route and puts it on the request context (WithRole,
// RoleFromContext) for the layers above (ACLs) to read.
//
// This package imports only the standard library: the api package, the
// server, the agent and the CLI all build on it.
package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
)

// Role is what a certificate lets its holder act as.
type Role string

// Roles, from most to least trusted.
const (
	// RoleNone is no role: no certificate, a certificate naming no role of
	// the region, or TLS off.
	RoleNone Role = ""
	// RoleServer is a control-plane server: Raft, forwarding, joins, and
	// reading task logs from agents.
	RoleServer Role = "server"
	// RoleAgent is a node agent: registration, heartbeats, allocation
	// watches and status reports.
	RoleAgent Role = "agent"
	// RoleClient is an API user (the CLI, scripts): neither of the above.
	RoleClient Role = "client"
)

// roles lists the roles a certificate may name, most trusted first: a
// certificate naming two acts as the first (only the CA's holder can make
// one).
var roles = []Role{RoleServer, RoleAgent, RoleClient}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r == RoleServer || r == RoleAgent || r == RoleClient }

// Domain is the last label of every role name.
const Domain = "gantry"

// DefaultRegion is the region of DefaultConfig and of `gantry tls cert
// create` without --region.
const DefaultRegion = "global"

// RoleName is the DNS name a certificate of role r in region carries:
// server.global.gantry.
func RoleName(r Role, region string) string {
	return string(r) + "." + region + "." + Domain
}

// RoleOf returns the role cert names for region (RoleNone if it names
// none). It does not verify cert: call it on a verified chain's leaf.
func RoleOf(cert *x509.Certificate, region string) Role {
	if cert == nil {
		return RoleNone
	}
	for _, r := range roles {
		want := RoleName(r, region)
		for _, n := range cert.DNSNames {
			if n == want {
				return r
			}
		}
	}
	return RoleNone
}

// PeerRole returns the role of a connection's verified client certificate
// (RoleNone without TLS or without a verified chain). Servers call it on
// http.Request.TLS: the listener (Store.ServerConfig) has verified the
// chain against the CA.
func PeerRole(cs *tls.ConnectionState, region string) Role {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return RoleNone
	}
	return RoleOf(cs.VerifiedChains[0][0], region)
}

type roleKey struct{}

// WithRole returns ctx carrying the caller's verified role. Servers put it
// on every request when TLS is on; for a request another server forwarded,
// it is the role of the original caller.
func WithRole(ctx context.Context, r Role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// RoleFromContext returns the caller's verified role; ok is false when no
// role was verified (TLS is off).
func RoleFromContext(ctx context.Context) (r Role, ok bool) {
	r, ok = ctx.Value(roleKey{}).(Role)
	return r, ok
}

// Config is the TLS configuration of a server, an agent or a client. Start
// from DefaultConfig: TLS is off until files are set.
type Config struct {
	// CAFile is a PEM bundle of the certificate authorities peers'
	// certificates must chain to (several, while a CA is rotated).
	// Setting any of the three files turns TLS on.
	CAFile string
	// CertFile and KeyFile are this process's certificate (PEM; with its
	// intermediates, if any) and private key.
	CertFile string
	KeyFile  string
	// Region is the region in role names (<role>.<region>.gantry) that
	// this process accepts and expects (default DefaultRegion).
	Region string
	// VerifyServerHostname makes outgoing connections check that the
	// peer's certificate names the role dialed (server.<region>.gantry
	// for a server, agent.<region>.gantry for an agent), not only that it
	// chains to the CA (default true). With false, any certificate of
	// the CA can pose as a server to this process.
	VerifyServerHostname bool
}

// DefaultConfig has TLS off, region DefaultRegion and hostname
// verification on.
func DefaultConfig() Config {
	return Config{Region: DefaultRegion, VerifyServerHostname: true}
}

// Enabled reports whether any file is set, which turns TLS on.
func (c Config) Enabled() bool {
	return c.CAFile != "" || c.CertFile != "" || c.KeyFile != ""
}

var regionRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidRegion reports whether region can be a DNS label of a role name.
func ValidRegion(region string) bool { return regionRE.MatchString(region) }

// Validate reports every bad field, one error each, named tls.<field>.
// needCert says whether a certificate is required once TLS is on (servers
// and agents present one; a client may have only the CA, though no gantry
// server accepts it). It reads no file: Load does.
func (c Config) Validate(needCert bool) error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("tls.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.CAFile == "" {
		bad("ca_file", "is required with tls.cert_file and tls.key_file (the CA that signs every gantry certificate)")
	}
	switch {
	case c.CertFile == "" && c.KeyFile != "":
		bad("cert_file", "is required with tls.key_file")
	case c.CertFile != "" && c.KeyFile == "":
		bad("key_file", "is required with tls.cert_file")
	case c.CertFile == "" && needCert:
		bad("cert_file", "is required with tls.ca_file: servers and agents present a certificate (gantry tls cert create)")
	}
	if !ValidRegion(c.Region) {
		bad("region", "%q must be a DNS label (lower-case letters, digits and '-'), as in %s", c.Region, RoleName(RoleServer, "global"))
	}
	return errors.Join(errs...)
}
