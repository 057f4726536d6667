package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// trackingStream is Raft's TCP stream layer that also remembers every
// connection it accepted or dialed and closes them on Close. The stock TCP
// layer closes only the listener, so connection goroutines of a shut-down
// server lingered until the peer hung up (leaked in tests, and kept a
// removed server's sockets open).
//
// With TLS (srvTLS and cliTLS set) every accepted connection is a TLS
// server connection whose handshake runs on its first read or write,
// bounded by handshakeTimeout, and every dialed one completes its
// handshake in Dial, within Dial's timeout.
type trackingStream struct {
	ln        net.Listener
	advertise net.Addr
	srvTLS    *tls.Config // nil: plain TCP
	cliTLS    *tls.Config

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // guarded by mu
	closed  bool                  // guarded by mu
	refused bool                  // inbound connections refused (guarded by mu)
}

var _ raft.StreamLayer = (*trackingStream)(nil)

// handshakeTimeout bounds an accepted connection's TLS handshake, so a
// peer that connects and says nothing does not hold a Raft goroutine.
const handshakeTimeout = 10 * time.Second

// newTrackingStream listens on bind. advertise is the address other servers
// dial; nil (or port 0) means the listener's own address. srvTLS and
// cliTLS turn TLS on for accepted and dialed connections (both or
// neither).
func newTrackingStream(bind string, advertise *net.TCPAddr, srvTLS, cliTLS *tls.Config) (*trackingStream, error) {
	if (srvTLS == nil) != (cliTLS == nil) {
		return nil, errors.New("raft transport: TLS needs both a listener and a dialer config")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	adv := ln.Addr()
	if advertise != nil && advertise.Port != 0 {
		adv = advertise
	}
	return &trackingStream{ln: ln, advertise: adv, srvTLS: srvTLS, cliTLS: cliTLS, conns: map[net.Conn]struct{}{}}, nil
}

func (t *trackingStream) track(c net.Conn, inbound bool) (net.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return nil, errors.New("raft transport closed")
	}
	tc := &trackedConn{Conn: c, owner: t, inbound: inbound}
	t.conns[tc] = struct{}{}
	return tc, nil
}

func (t *trackingStream) forget(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Accept implements net.Listener. Once inbound connections are refused it
// closes every new one at once instead of returning an error, which Raft's
// transport would log (and retry) as a failed accept.
func (t *trackingStream) Accept() (net.Conn, error) {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		refused := t.refused
		t.mu.Unlock()
		if refused {
			_ = c.Close()
			continue
		}
		tc, err := t.track(c, true)
		if err != nil || t.srvTLS == nil {
			return tc, err
		}
		// Raft accepts on one goroutine: the handshake happens on the
		// connection's own, at its first read.
		return &serverTLSConn{Conn: tls.Server(tc, t.srvTLS)}, nil
	}
}

// RefuseInbound closes every accepted connection and refuses new ones,
// while connections this server dialed keep working. A stopping server
// calls it before shutting Raft down: a request that arrived after Raft
// stopped would wait for a consumer that is gone and be logged as a
// failed decode when the transport closes.
func (t *trackingStream) RefuseInbound() {
	t.mu.Lock()
	t.refused = true
	var inbound []*trackedConn
	for c := range t.conns {
		if tc := c.(*trackedConn); tc.inbound {
			inbound = append(inbound, tc)
		}
	}
	t.mu.Unlock()
	for _, c := range inbound {
		_ = c.Conn.Close()
	}
}

// ownClose reports whether the stream layer itself closed c (a shutdown,
// or refused inbound connections).
func (t *trackingStream) ownClose(c *trackedConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed || (c.inbound && t.refused)
}

// Close closes the listener and every tracked connection.
func (t *trackingStream) Close() error {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = map[net.Conn]struct{}{}
	t.mu.Unlock()
	for c := range conns {
		_ = c.(*trackedConn).Conn.Close()
	}
	return t.ln.Close()
}

// Addr is the advertised address (what goes into the Raft configuration).
func (t *trackingStream) Addr() net.Addr { return t.advertise }

// Dial implements raft.StreamLayer.
func (t *trackingStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: timeout}).Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	tc, err := t.track(c, false)
	if err != nil || t.cliTLS == nil {
		return tc, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn := tls.Client(tc, t.cliTLS)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("raft: TLS handshake with %s: %w", address, err)
	}
	return conn, nil
}

// serverTLSConn is an accepted TLS connection that completes its handshake,
// within handshakeTimeout, before its first read or write.
type serverTLSConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *serverTLSConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := c.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("raft: refused TLS connection from %s: %w", c.RemoteAddr(), err)
		}
	})
	return c.err
}

func (c *serverTLSConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *serverTLSConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

type trackedConn struct {
	net.Conn
	owner   *trackingStream
	inbound bool // accepted, not dialed
	once    sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.owner.forget(c) })
	return c.Conn.Close()
}

// Read ends the stream with io.EOF when it ends by a hang-up rather than a
// fault: the stream layer itself closed the connection (a shutdown), or the
// peer did and reset it (a peer closing a connection with unread data in its
// buffer resets it instead of ending it). Raft's transport logs any other
// read error between two requests as "failed to decode incoming command".
// A reset in the middle of a request still fails that request's decoding.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	switch {
	case err == nil:
	case errors.Is(err, net.ErrClosed) && c.owner.ownClose(c), errors.Is(err, syscall.ECONNRESET):
		return n, io.EOF
	}
	return n, err
}

// Write drops what is written after the stream layer closed the
// connection (the answer to a request that raced with the shutdown): the
// peer can no longer receive it, and the error would be logged as a failed
// flush although nothing failed but the stop we asked for.
func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, net.ErrClosed) && c.owner.ownClose(c) {
		return len(b), nil
	}
	return n, err
}
