package agent

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Mutual TLS (Config.TLS): the agent dials the servers over https with
// its agent certificate, checking that theirs name server.<region>.gantry,
// and serves its own API over TLS to certificates of its CA; task logs go
// to servers only (serversOnly), since a log may hold what a task's owner
// alone should read and the servers check who asks.

// agentTLS loads cfg.TLS (nil store without TLS) and, with TLS on, builds
// the HTTP client for the servers.
func agentTLS(cfg Config) (*tlsutil.Store, *http.Client, error) {
	if !cfg.TLS.Enabled() {
		return nil, nil, nil
	}
	certs, err := tlsutil.Load(cfg.TLS, tlsutil.RoleAgent)
	if err != nil {
		return nil, nil, err
	}
	// As api.NewClient's default: no global timeout (blocking queries).
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		TLSClientConfig: certs.ClientConfig(tlsutil.RoleServer),
	}}
	return certs, hc, nil
}

// serverURLs gives addresses without a scheme the https scheme with TLS
// on (api.NewClient would give them http).
func serverURLs(servers []string, useTLS bool) []string {
	if !useTLS {
		return servers
	}
	out := make([]string, len(servers))
	for i, s := range servers {
		if !strings.Contains(s, "://") {
			s = "https://" + s
		}
		out[i] = s
	}
	return out
}

// serversOnly refuses, with TLS on, callers whose certificate is not a
// server's.
func (a *Agent) serversOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.tls != nil {
			if role := tlsutil.PeerRole(r.TLS, a.cfg.TLS.Region); role != tlsutil.RoleServer {
				writeError(w, http.StatusForbidden, fmt.Sprintf(
					"task logs are served to gantry servers only (the caller's certificate has role %s; ask a server: GET /v1/allocation/{id}/logs)",
					roleName(role)))
				return
			}
		}
		h(w, r)
	}
}

func roleName(r tlsutil.Role) string {
	if r == tlsutil.RoleNone {
		return "none"
	}
	return string(r)
}

// ReloadTLS reads the TLS files again (the gantry agent command calls it on
// SIGHUP): connections made afterwards use the new certificate and CA. On
// an error the old files stay in use and the error, also logged, says
// what is wrong. Without TLS it does nothing.
func (a *Agent) ReloadTLS() error {
	if a.tls == nil {
		a.log.Info("TLS reload asked for, but TLS is off")
		return nil
	}
	if err := a.tls.Reload(); err != nil {
		a.log.Error("TLS reload failed", "error", err)
		return err
	}
	c := a.tls.Certificate()
	a.log.Info("TLS certificate reloaded", "serial", c.SerialNumber.Text(16), "not_after", c.NotAfter)
	if a.ownHTTP != nil {
		// Idle connections to the servers were made with the old
		// certificate; the next requests dial with the new one.
		a.ownHTTP.CloseIdleConnections()
	}
	return nil
}
