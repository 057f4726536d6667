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

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
	closed bool                  // guarded by mu
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

func (t *trackingStream) track(c net.Conn) (net.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return nil, errors.New("raft transport closed")
	}
	tc := &trackedConn{Conn: c, owner: t}
	t.conns[tc] = struct{}{}
	return tc, nil
}

func (t *trackingStream) forget(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Accept implements net.Listener.
func (t *trackingStream) Accept() (net.Conn, error) {
	c, err := t.ln.Accept()
	if err != nil {
		return nil, err
	}
	return t.track(c)
}

func (t *trackingStream) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
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
	return t.track(c)
}

type trackedConn struct {
	net.Conn
	owner *trackingStream
	once  sync.Once
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
	case errors.Is(err, net.ErrClosed) && c.owner.isClosed(), errors.Is(err, syscall.ECONNRESET):
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
	if err != nil && errors.Is(err, net.ErrClosed) && c.owner.isClosed() {
		return len(b), nil
	}
	return n, err
}
