package kv

import (
	"crypto/tls"
	"net"
	"strings"
	"time"
)

// Protected mode and TLS connections (docs/kv.md, "Security").

// protectedDenied is Redis 7's refusal of a client from another host while
// protected mode is on and the default user has no password, word for
// word (typos included): clients and operators search for it.
const protectedDenied = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"

// tlsHandshakeTimeout bounds a TLS handshake, so a client that connects
// and sends nothing does not hold its goroutine.
const tlsHandshakeTimeout = 10 * time.Second

// isLocal reports whether a client connects from this host: loopback or
// a Unix socket, as Redis's connIsLocal.
func isLocal(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// protectedRefuses reports whether protected mode refuses a client from
// addr: it is on, the default user has no password, and addr is remote.
func (s *Server) protectedRefuses(addr net.Addr) bool {
	if !s.protectedMode.Load() {
		return false
	}
	if u := s.users.Default().User(); !u.NoPass() || !u.Enabled() {
		return false
	}
	return !isLocal(addr)
}

// admitPlain answers a new plain connection refused by protected mode and
// closes it (a new socket's send buffer is empty: the write does not
// block the accept loop); true admits it. TLS connections are checked
// after their handshake (admitTLS), on their own goroutine.
func (s *Server) admitPlain(nc net.Conn) bool {
	if _, isTLS := nc.(*tls.Conn); isTLS {
		return true
	}
	if s.protectedRefuses(nc.RemoteAddr()) {
		s.protectedRefused.Add(1)
		_, _ = nc.Write([]byte(protectedDenied))
		nc.Close()
		return false
	}
	return true
}

// admitTLS runs the handshake of a TLS client within tlsHandshakeTimeout
// and then the protected mode check; false means the connection is to be
// closed. A plain connection is admitted.
func (c *Client) admitTLS() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	if t, ok := tc.NetConn().(*net.TCPConn); ok {
		_ = t.SetNoDelay(true)
	}
	_ = tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		c.srv.tlsHandshakeErrors.Add(1)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	if c.srv.protectedRefuses(tc.RemoteAddr()) {
		c.srv.protectedRefused.Add(1)
		_ = tc.SetWriteDeadline(time.Now().Add(tlsHandshakeTimeout))
		_, _ = tc.Write([]byte(protectedDenied))
		return false
	}
	return true
}

// refuseMaxClients tells a client over maxclients so. A new socket's send
// buffer is empty: the write does not block the accept loop. A TLS client
// is closed without it: writing would wait for its handshake.
func refuseMaxClients(nc net.Conn) {
	if _, isTLS := nc.(*tls.Conn); isTLS {
		return
	}
	_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
}

// ServeTLS accepts TLS clients on ln (--tls-port) with cfg until Close.
// They are served each by its own goroutine (the event loops read the
// socket themselves, which TLS does not allow), with the same commands,
// limits and users as plain clients.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	return s.Serve(tls.NewListener(ln, cfg))
}

// initSecurity adds protected-mode to CONFIG.
func (s *Server) initSecurity() {
	s.protectedMode.Store(s.cfg.ProtectedMode)
	s.migrations.tls = s.cfg.MigrateTLS
	s.config["protected-mode"] = configParam{
		get: func(s *Server) string { return map[bool]string{true: "yes", false: "no"}[s.protectedMode.Load()] },
		set: func(s *Server, v string) string {
			switch strings.ToLower(v) {
			case "yes":
				s.protectedMode.Store(true)
			case "no":
				s.protectedMode.Store(false)
			default:
				return "argument must be 'yes' or 'no'"
			}
			return ""
		},
	}
}

// migrateTLS runs the TLS handshake of a MIGRATE connection when
// tls-cluster is on; a plain connection is returned as it is.
func migrateTLS(nc net.Conn, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	if cfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, cfg)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}
