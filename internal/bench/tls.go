package bench

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

// benchTLS is the throwaway PKI of a --tls run: the server's files and
// loaded certificates for the simulated nodes (agent) and the submitters
// (client).
type benchTLS struct {
	server tlsutil.Config
	stores map[tlsutil.Role]*tlsutil.Store
}

// newBenchTLS makes a CA and a server, an agent and a client certificate
// in dir (created; it must not hold them already).
func newBenchTLS(dir string) (*benchTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench tls: %w", err)
	}
	cfgs, err := tlsutil.CreateBundle(dir, tlsutil.DefaultRegion, tlsutil.RoleServer, tlsutil.RoleAgent, tlsutil.RoleClient)
	if err != nil {
		return nil, fmt.Errorf("bench tls: %w", err)
	}
	b := &benchTLS{server: cfgs[tlsutil.RoleServer], stores: map[tlsutil.Role]*tlsutil.Store{}}
	for _, r := range []tlsutil.Role{tlsutil.RoleAgent, tlsutil.RoleClient} {
		if b.stores[r], err = tlsutil.Load(cfgs[r], tlsutil.RoleNone); err != nil {
			return nil, fmt.Errorf("bench tls: %w", err)
		}
	}
	return b, nil
}

// forRole is the TLS of a client presenting role's certificate to the
// server, or nil without TLS.
func (b *benchTLS) forRole(r tlsutil.Role) *tls.Config {
	if b == nil {
		return nil
	}
	return b.stores[r].ClientConfig(tlsutil.RoleServer)
}
