package peerexec

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Persistent streams between peers. The cluster bus (memberlist) opens a
// TCP connection for every message it sends reliably; with every peer
// sending loads, reports and admits to every other, that cost grew with
// the square of the peers and capped throughput. So each pair of peers
// keeps one long-lived connection, opened by the peer with the smaller ID
// to the other's HTTP API (GET /v1/peer/stream, upgraded like a
// WebSocket: the API's TLS and credentials cover it), and both send
// length-prefixed frames on it. A frame is a 4-byte big-endian length and
// that many bytes of a batch (EncodeBatch, or EncodeBinaryBatch for a
// peer that reads it); length 0 is a keepalive. Until a stream
// is up (the dialer learns the other's HTTP address from its first load,
// which travels on the bus), and whenever one is down, messages go on the
// bus as before.

const (
	streamPath   = "/v1/peer/stream"
	streamProto  = "gantry-exec/1"
	streamFrom   = "X-Gantry-Peer-From"
	frameHdr     = 4
	maxFrameSize = MaxMessageSize
	// streamQueue bounds the frames waiting for one peer. A full queue
	// resets the stream (a delta must not be dropped silently): the
	// messages fall back to the bus and the next stream starts with a full
	// load.
	streamQueue = 1024
	// maxStreams bounds the streams a peer accepts.
	maxStreams       = 1024
	streamKeepalive  = time.Second
	streamIdle       = 5 * streamKeepalive // silence that ends a stream
	streamWriteLimit = 5 * time.Second
	streamBackoffMin = 100 * time.Millisecond
	streamBackoffMax = 5 * time.Second
	streamDialLimit  = 5 * time.Second
)

// ErrBadFrame wraps every framing error.
var ErrBadFrame = errors.New("bad stream frame")

// appendFrame appends b as one frame.
func appendFrame(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// readFrame reads one frame (nil for a keepalive). A length above
// maxFrameSize is refused before anything is allocated.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [frameHdr]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrameSize {
		return nil, fmt.Errorf("%w: length %d, limit %d", ErrBadFrame, n, maxFrameSize)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: truncated frame of %d bytes: %w", ErrBadFrame, n, err)
	}
	return b, nil
}

// StreamDialer opens the connection of a stream: TLS and credentials of
// the peer's HTTP API.
type StreamDialer struct {
	TLS *tls.Config
	// User and Password authenticate to the other peer's API (HTTP basic),
	// when set.
	User, Password string
}

// dial opens a stream to the API at addr, from this peer's ID.
func (d StreamDialer) dial(ctx context.Context, addr, from string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, streamDialLimit)
	defer cancel()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d.TLS != nil {
		cfg := d.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"} // a stream takes the connection over: no HTTP/2
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+streamPath, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", streamProto)
	req.Header.Set(streamFrom, from)
	if d.User != "" || d.Password != "" {
		req.SetBasicAuth(d.User, d.Password)
	}
	if err := req.Write(c); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		c.Close()
		return nil, fmt.Errorf("stream to %s: %s: %s", addr, resp.Status, body)
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 { // frames the peer sent right after its answer
		return &bufConn{Conn: c, r: br}, nil
	}
	return c, nil
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// streams keeps this peer's streams: one per other peer.
type streams struct {
	self   string
	dialer StreamDialer
	recv   func(b []byte)             // a frame's batch
	link   func(peer string, up bool) // a stream came up or went down
	logger *log.Logger

	mu      sync.Mutex
	conns   map[string]*streamConn // guarded by mu
	dialers map[string]*dialer     // guarded by mu
	closed  bool                   // guarded by mu
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

type streamConn struct {
	peer string
	c    net.Conn
	q    chan []byte
	done chan struct{}
	once sync.Once
}

func (sc *streamConn) close() {
	sc.once.Do(func() {
		close(sc.done)
		sc.c.Close()
	})
}

type dialer struct {
	addr   string
	cancel context.CancelFunc
}

func newStreams(self string, d StreamDialer, recv func([]byte), link func(string, bool), logger *log.Logger) *streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &streams{self: self, dialer: d, recv: recv, link: link, logger: logger,
		conns: map[string]*streamConn{}, dialers: map[string]*dialer{}, ctx: ctx, cancel: cancel}
}

// send queues a frame for peer; false when no stream is up (the caller
// uses the bus). A full queue resets the stream.
func (s *streams) send(peer string, b []byte) bool {
	s.mu.Lock()
	sc := s.conns[peer]
	s.mu.Unlock()
	if sc == nil {
		return false
	}
	select {
	case <-sc.done:
		return false
	case sc.q <- b:
		return true
	default:
		s.logger.Printf("exec: stream to %s: %d frames waiting; resetting it", peer, streamQueue)
		sc.close()
		return false
	}
}

// up reports whether a stream to peer is up.
func (s *streams) up(peer string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[peer] != nil
}

// ensure keeps a dialer running for each peer of targets (ID -> HTTP
// address) that this peer dials (a smaller ID dials a larger one), and
// stops the others.
func (s *streams) ensure(targets map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for id, d := range s.dialers {
		if addr, ok := targets[id]; !ok || addr != d.addr {
			d.cancel()
			delete(s.dialers, id)
		}
	}
	for id, addr := range targets {
		if id <= s.self || addr == "" || s.dialers[id] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		s.dialers[id] = &dialer{addr: addr, cancel: cancel}
		s.wg.Add(1)
		go s.dialLoop(ctx, id, addr)
	}
}

// dialLoop keeps a stream to peer open, reconnecting with exponential
// backoff (and jitter) while the dials fail.
func (s *streams) dialLoop(ctx context.Context, peer, addr string) {
	defer s.wg.Done()
	backoff := streamBackoffMin
	for ctx.Err() == nil {
		c, err := s.dialer.dial(ctx, addr, s.self)
		if err == nil {
			backoff = streamBackoffMin
			sc := s.attach(peer, c)
			if sc == nil {
				return
			}
			select {
			case <-sc.done:
			case <-ctx.Done():
				sc.close()
				return
			}
		} else if ctx.Err() == nil {
			s.logger.Printf("exec: stream to %s (%s): %v", peer, addr, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, streamBackoffMax)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// accept serves GET /v1/peer/stream: the connection becomes the stream
// from the peer named in X-Gantry-Peer-From.
func (s *streams) accept(w http.ResponseWriter, r *http.Request) {
	from := r.Header.Get(streamFrom)
	switch {
	case from == "" || len(from) > 256:
		http.Error(w, "stream: missing or too long "+streamFrom+" header", http.StatusBadRequest)
		return
	case r.Header.Get("Upgrade") != streamProto:
		http.Error(w, "stream: want Upgrade: "+streamProto, http.StatusBadRequest)
		return
	case from == s.self:
		http.Error(w, "stream: from this peer itself", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n >= maxStreams {
		http.Error(w, fmt.Sprintf("stream: %d streams open, limit %d", n, maxStreams), http.StatusServiceUnavailable)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "stream: this connection cannot be taken over (HTTP/2?)", http.StatusBadRequest)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Now().Add(streamWriteLimit))
	if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+streamProto+"\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	conn := c
	if brw.Reader.Buffered() > 0 {
		conn = &bufConn{Conn: c, r: brw.Reader}
	}
	s.attach(from, conn)
}

// attach makes c the stream to peer (replacing an older one) and runs
// its reader and writer; nil when closing.
func (s *streams) attach(peer string, c net.Conn) *streamConn {
	sc := &streamConn{peer: peer, c: c, q: make(chan []byte, streamQueue), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return nil
	}
	old := s.conns[peer]
	s.conns[peer] = sc
	s.wg.Add(2)
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	s.link(peer, true)
	go s.writeLoop(sc)
	go s.readLoop(sc)
	return sc
}

// detach ends sc, and tells the engine when it was the peer's stream.
func (s *streams) detach(sc *streamConn) {
	sc.close()
	s.mu.Lock()
	cur := s.conns[sc.peer] == sc
	if cur {
		delete(s.conns, sc.peer)
	}
	s.mu.Unlock()
	if cur {
		s.link(sc.peer, false)
	}
}

func (s *streams) writeLoop(sc *streamConn) {
	defer s.wg.Done()
	defer s.detach(sc)
	bw := bufio.NewWriterSize(sc.c, 64<<10)
	keep := time.NewTicker(streamKeepalive)
	defer keep.Stop()
	var hdr []byte
	write := func(b []byte) error {
		_ = sc.c.SetWriteDeadline(time.Now().Add(streamWriteLimit))
		hdr = binary.BigEndian.AppendUint32(hdr[:0], uint32(len(b)))
		if _, err := bw.Write(hdr); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	for {
		select {
		case <-sc.done:
			return
		case <-keep.C:
			err := write(nil)
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				return
			}
		case b := <-sc.q:
			err := write(b)
			for err == nil && len(sc.q) > 0 { // batch what waits into one flush
				err = write(<-sc.q)
			}
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				s.logger.Printf("exec: stream to %s: %v", sc.peer, err)
				return
			}
		}
	}
}

func (s *streams) readLoop(sc *streamConn) {
	defer s.wg.Done()
	defer s.detach(sc)
	br := bufio.NewReaderSize(sc.c, 64<<10)
	for {
		_ = sc.c.SetReadDeadline(time.Now().Add(streamIdle))
		b, err := readFrame(br)
		if err != nil {
			select {
			case <-sc.done:
			default:
				if !errors.Is(err, io.EOF) {
					s.logger.Printf("exec: stream from %s: %v", sc.peer, err)
				}
			}
			return
		}
		if b != nil {
			s.recv(b)
		}
	}
}

// close ends every stream and dialer and waits for their goroutines.
func (s *streams) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*streamConn, 0, len(s.conns))
	for _, sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	s.cancel()
	for _, sc := range conns {
		sc.close()
	}
	s.wg.Wait()
}
