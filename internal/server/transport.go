package server

import (
	"errors"
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
type trackingStream struct {
	ln        net.Listener
	advertise net.Addr

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // guarded by mu
	closed  bool                  // guarded by mu
	refused bool                  // inbound connections refused (guarded by mu)
}

var _ raft.StreamLayer = (*trackingStream)(nil)

// newTrackingStream listens on bind. advertise is the address other servers
// dial; nil (or port 0) means the listener's own address.
func newTrackingStream(bind string, advertise *net.TCPAddr) (*trackingStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	adv := ln.Addr()
	if advertise != nil && advertise.Port != 0 {
		adv = advertise
	}
	return &trackingStream{ln: ln, advertise: adv, conns: map[net.Conn]struct{}{}}, nil
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
		return t.track(c, true)
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
	return t.track(c, false)
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
