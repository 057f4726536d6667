package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Mutual TLS (Config.TLS; docs/operations.md, "TLS"). With it on:
//
//   - The API listener takes only certificates of the CA that name a role
//     of the region (tlsutil.Store.ServerConfig); identify puts the
//     caller's role on the request context (tlsutil.RoleFromContext), and
//     checkRole refuses routes the role may not call (routeRoles).
//   - Raft listens with TLS and takes server certificates only; it dials
//     other servers checking theirs (transport.go).
//   - Forwarding, discovery and joins dial other servers' APIs over TLS
//     with this server's certificate, and the request forwarded carries the
//     original caller's role (api.ForwardedRoleHeader), which a server
//     believes only from a server certificate.
//   - Task logs are read from agents over TLS, checking the agent's
//     certificate; the agent takes only server certificates there.
//
// Without TLS every caller is anonymous and nothing is checked here; the
// ACL layer (tokens in X-Gantry-Token, which forwarding passes on as is)
// decides on its own, and may also read the role when TLS is on.

// routeRoles lists the routes only some certificate roles may call; the
// others take any role the API listener accepted.
var routeRoles = map[string][]tlsutil.Role{
	// The agent protocol: an agent speaks for its nodes.
	"POST /v1/node/register":           {tlsutil.RoleAgent, tlsutil.RoleServer},
	"POST /v1/node/{id}/heartbeat":     {tlsutil.RoleAgent, tlsutil.RoleServer},
	"POST /v1/node/{id}/allocations":   {tlsutil.RoleAgent, tlsutil.RoleServer},
	"POST /v1/nodes/allocations/watch": {tlsutil.RoleAgent, tlsutil.RoleServer},
	"POST /v1/nodes/allocations":       {tlsutil.RoleAgent, tlsutil.RoleServer},
	"PUT /v1/nodes/heartbeat":          {tlsutil.RoleAgent, tlsutil.RoleServer},
	// Servers join through each other; an operator adds a server by
	// starting it with --join.
	"POST /v1/operator/raft/join": {tlsutil.RoleServer},
}

// scheme is the URL scheme of other servers' and agents' APIs.
func (s *Server) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// tlsClient is the tls.Config for dialing a peer of role peer, or nil
// without TLS.
func (s *Server) tlsClient(peer tlsutil.Role) *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.ClientConfig(peer)
}

// identify puts the caller's verified role on each request's context and
// refuses forwarding headers from anyone but a server. Without TLS it only
// drops a forwarded role, which nothing could vouch for.
func (s *Server) identify(next http.Handler) http.Handler {
	if s.tls == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del(api.ForwardedRoleHeader)
			next.ServeHTTP(w, r)
		})
	}
	region := s.cfg.TLS.Region
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := tlsutil.PeerRole(r.TLS, region)
		if role == tlsutil.RoleNone {
			// The listener refuses such certificates; this is a guard.
			writeError(w, &httpError{code: http.StatusForbidden, msg: "no verified client certificate"})
			return
		}
		fwd := r.Header.Get(api.ForwardedRoleHeader)
		if fwd != "" || r.Header.Get(api.ForwardHopsHeader) != "" {
			if role != tlsutil.RoleServer {
				writeError(w, &httpError{code: http.StatusForbidden, msg: fmt.Sprintf(
					"only servers forward requests: a certificate of role %s may not send %s or %s",
					role, api.ForwardedRoleHeader, api.ForwardHopsHeader)})
				return
			}
			if fwd != "" {
				if !tlsutil.Role(fwd).Valid() {
					writeError(w, badRequest("%s: %q is not a role (server, agent or client)", api.ForwardedRoleHeader, fwd))
					return
				}
				role = tlsutil.Role(fwd)
			}
		}
		next.ServeHTTP(w, r.WithContext(tlsutil.WithRole(r.Context(), role)))
	})
}

// checkRole refuses a route the caller's certificate role may not call
// (routeRoles). Without TLS there is no role and it allows everything.
func checkRole(route string, r *http.Request) error {
	allowed := routeRoles[route]
	if len(allowed) == 0 {
		return nil
	}
	role, ok := tlsutil.RoleFromContext(r.Context())
	if !ok || slices.Contains(allowed, role) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf(
		"%s needs a certificate of role %s; the caller's has role %s", route, strings.Join(names, " or "), role)}
}

// setForwardedRole sets the header a forwarded request carries: the
// original caller's role, when one was verified.
func setForwardedRole(in, out *http.Request) {
	if role, ok := tlsutil.RoleFromContext(in.Context()); ok {
		out.Header.Set(api.ForwardedRoleHeader, string(role))
	} else {
		out.Header.Del(api.ForwardedRoleHeader)
	}
}

// securityWarnings says why a server with cfg is open to whoever can reach
// it: an API or Raft address that is not loopback, without TLS. When ACLs
// exist, their absence belongs here too (a server with TLS and no ACLs
// still runs any client certificate's jobs).
func securityWarnings(cfg Config) []string {
	var open []string
	for _, a := range []struct{ field, addr string }{{"http_addr", cfg.HTTPAddr}, {"raft_addr", cfg.RaftAddr}} {
		if !loopback(a.addr) {
			open = append(open, a.field+" "+a.addr)
		}
	}
	if len(open) == 0 {
		return nil
	}
	var warn []string
	if !cfg.TLS.Enabled() {
		warn = append(warn, fmt.Sprintf("TLS is off and this server listens beyond loopback (%s): anyone who can reach it "+
			"can read and change the traffic and pose as a server or an agent; turn TLS on "+
			"(--ca-file, --cert-file, --key-file; docs/operations.md, TLS)", strings.Join(open, ", ")))
	}
	if !cfg.ACL.Enabled {
		warn = append(warn, fmt.Sprintf("ACLs are off and this server listens beyond loopback (%s): any caller "+
			"can run jobs, register nodes, join servers and restore snapshots; turn ACLs on "+
			"(--acl-enabled, then gantry acl bootstrap; docs/operations.md, Access control)", strings.Join(open, ", ")))
	}
	return warn
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReloadTLS reads the TLS files again (the gantry server command calls it
// on SIGHUP). Connections made afterwards use the new certificate and CA;
// established ones keep theirs. On an error the old files stay in use and
// the error, also logged, says what is wrong. Without TLS it does nothing.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		s.logger.Info("TLS reload asked for, but TLS is off")
		return nil
	}
	if err := s.tls.Reload(); err != nil {
		s.logger.Error("TLS reload failed", "error", err)
		return err
	}
	c := s.tls.Certificate()
	s.logger.Info("TLS certificate reloaded", "serial", c.SerialNumber.Text(16), "not_after", c.NotAfter)
	// Outgoing keep-alive connections were made with the old
	// certificate; the next requests dial again with the new one.
	s.peerHTTP.CloseIdleConnections()
	s.logClient.CloseIdleConnections()
	if t, ok := s.forwarder.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}
