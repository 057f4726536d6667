package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/tlsutil"
	"github.com/redis/go-redis/v9"
)

// TLSConfig is Redis's TLS settings (docs/kv.md, "TLS"): a certificate
// and key this peer serves and dials with, the CA that clients' and
// peers' certificates must chain to, and where TLS is used.
type TLSConfig struct {
	// Port serves the Redis protocol over TLS (tls-port); 0: off.
	Port     int
	CertFile string
	KeyFile  string
	CAFile   string
	// AuthClients is tls-auth-clients: "yes" (the default) requires a
	// client certificate from the CA, "optional" checks one if given,
	// "no" asks for none.
	AuthClients string
	// Replication makes a replica dial its primary with TLS
	// (tls-replication); Cluster makes MIGRATE and the cluster layer's
	// connections to other peers use TLS (tls-cluster).
	Replication bool
	Cluster     bool
}

// Enabled reports whether any TLS is configured.
func (c TLSConfig) Enabled() bool { return c.Port != 0 || c.Replication || c.Cluster }

// Validate checks the settings without reading the files.
func (c TLSConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.Port < 0 || c.Port > 65535 {
		return badConfig("tls-port %d: want 0..65535", c.Port)
	}
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return badConfig("TLS needs tls-cert-file, tls-key-file and tls-ca-cert-file")
	}
	switch c.AuthClients {
	case "", "yes", "no", "optional":
	default:
		return badConfig("tls-auth-clients %q: want yes, no or optional", c.AuthClients)
	}
	return nil
}

// TLSFiles holds the certificate, key and CA read from a TLSConfig's
// files; Reload reads them again (SIGHUP) and new connections use them,
// established ones keep theirs, as tlsutil.Store does for the servers.
type TLSFiles struct {
	cfg TLSConfig
	cur atomic.Pointer[tlsMaterial]
}

type tlsMaterial struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// LoadTLS reads the files of cfg.
func LoadTLS(cfg TLSConfig) (*TLSFiles, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &TLSFiles{cfg: cfg}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again; on an error the files loaded before stay.
func (f *TLSFiles) Reload() error {
	cert, err := tls.LoadX509KeyPair(f.cfg.CertFile, f.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls-cert-file %s, tls-key-file %s: %w", f.cfg.CertFile, f.cfg.KeyFile, err)
	}
	b, err := os.ReadFile(f.cfg.CAFile)
	if err != nil {
		return fmt.Errorf("tls-ca-cert-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("tls-ca-cert-file %s: no PEM certificate in it", f.cfg.CAFile)
	}
	f.cur.Store(&tlsMaterial{cert: cert, pool: pool})
	return nil
}

// ServerConfig is the tls.Config of the TLS port: the current certificate,
// and client certificates checked by tls-auth-clients against the CA.
func (f *TLSFiles) ServerConfig() *tls.Config {
	auth := tls.RequireAndVerifyClientCert
	switch f.cfg.AuthClients {
	case "no":
		auth = tls.NoClientCert
	case "optional":
		auth = tls.VerifyClientCertIfGiven
	}
	return &tls.Config{
		MinVersion: tlsutil.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := f.cur.Load()
			return &tls.Config{
				MinVersion:   tlsutil.MinVersion,
				Certificates: []tls.Certificate{m.cert},
				ClientAuth:   auth,
				ClientCAs:    m.pool,
			}, nil
		},
	}
}

// ClientConfig is the tls.Config of this peer's connections to other
// peers (replication, MIGRATE, failover): its certificate, and theirs
// checked against the CA. As Redis, the peer's host name is not checked
// (peers are addressed by IP): the chain is.
func (f *TLSFiles) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tlsutil.MinVersion,
		InsecureSkipVerify: true, // VerifyConnection checks the chain with the current CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the peer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: f.cur.Load().pool, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			return err
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m := f.cur.Load()
			return &m.cert, nil
		},
	}
}

// startTLS reads the TLS files and listens on the TLS port.
func (p *Peer) startTLS() error {
	if !p.cfg.TLS.Enabled() {
		return nil
	}
	f, err := LoadTLS(p.cfg.TLS)
	if err != nil {
		return err
	}
	p.tls = f
	if p.cfg.TLS.Port != 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(p.cfg.Bind, strconv.Itoa(p.cfg.TLS.Port)))
		if err != nil {
			return fmt.Errorf("tls-port: %w", err)
		}
		p.tlsLn = ln
	}
	return nil
}

// storeTLS gives the store the TLS of its connections to other peers.
func (p *Peer) storeTLS(kcfg *kv.Config) {
	if p.tls == nil {
		return
	}
	if p.cfg.TLS.Replication {
		kcfg.ReplTLS = p.tls.ClientConfig()
	}
	if p.cfg.TLS.Cluster {
		kcfg.MigrateTLS = p.tls.ClientConfig()
	}
}

// serveTLS serves the TLS port, when there is one, until Close.
func (p *Peer) serveTLS() {
	if p.tlsLn == nil {
		return
	}
	p.tlsWG.Add(1)
	go func() {
		defer p.tlsWG.Done()
		if err := p.srv.ServeTLS(p.tlsLn, p.tls.ServerConfig()); !errors.Is(err, kv.ErrServerClosed) {
			p.logger.Printf("tls-port: %v", err)
		}
	}()
}

// TLSAddr returns the address of the TLS port; nil without one.
func (p *Peer) TLSAddr() net.Addr {
	if p.tlsLn == nil {
		return nil
	}
	return p.tlsLn.Addr()
}

// ReloadTLS reads the TLS files again (SIGHUP): new connections use them.
func (p *Peer) ReloadTLS() error {
	if p.tls == nil {
		return nil
	}
	return p.tls.Reload()
}

// peerClient completes the options of the cluster layer's connections to
// other peers: masteruser/masterauth, and TLS with tls-cluster.
func (p *Peer) peerClient(o *redis.Options) {
	o.Username, o.Password = p.cfg.Store.MasterUser, p.cfg.Store.MasterAuth
	if p.tls != nil && p.cfg.TLS.Cluster {
		o.TLSConfig = p.tls.ClientConfig()
	}
}

// TLSFiles returns the TLS files of this peer; nil without TLS.
func (p *Peer) TLSFiles() *TLSFiles { return p.tls }
