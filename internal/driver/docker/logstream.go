package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// A container's log is followed for as long as the container runs, so
// the agent holds one such request per container. Through the client's
// http.Transport each would cost a pooled connection with its read and
// write goroutines and their 4 KiB buffers, beside the goroutine reading
// the body. openLogStream sends the request on a connection of its own
// from the client's dialer (unix socket, TCP or TLS, as the client is
// configured) and reads the answer in the caller's goroutine: one
// goroutine and a small read buffer per followed container. Every other
// call goes through the client.

// streamReadBuffer is the read buffer of a log stream's connection: the
// status line and headers, then chunk headers; frame bodies larger than
// it are read past it.
const streamReadBuffer = 1 << 10

// maxStreamError bounds what is read of an error answer, and
// maxStreamHeader its status line and headers (the client's transport
// allows 1 MiB).
const (
	maxStreamError  = 4 << 10
	maxStreamHeader = 1 << 20
)

// headerLimit lets at most n bytes through while n >= 0, then fails
// reads; n < 0 lifts the limit (once the headers are read).
type headerLimit struct {
	r io.Reader
	n int64
}

func (h *headerLimit) Read(p []byte) (int, error) {
	if h.n < 0 {
		return h.r.Read(p)
	}
	if h.n == 0 {
		return 0, fmt.Errorf("the daemon's answer headers exceed %d bytes", maxStreamHeader)
	}
	if int64(len(p)) > h.n {
		p = p[:h.n]
	}
	k, err := h.r.Read(p)
	h.n -= int64(k)
	return k, err
}

// logStream is an open log stream: its body and the connection under it.
type logStream struct {
	body io.ReadCloser
	conn net.Conn
	stop func() bool // cancels the close-on-cancel of the request's context
}

func (s *logStream) Read(p []byte) (int, error) { return s.body.Read(p) }

// Close closes the connection, then the body: a body closed first would
// be read to its end, which a followed log never reaches.
func (s *logStream) Close() error {
	s.stop()
	err := s.conn.Close()
	_ = s.body.Close()
	return err
}

// openLogStream asks the daemon for a container's log (GET
// /containers/{id}/logs with query q). Cancelling ctx closes the
// connection, which ends a read in progress. The API version is the
// client's, negotiated by the calls that precede a stream (the create or
// the inspect); a stream opened before any call succeeded may be refused
// with the client's newest version, and the watcher's retry, after its
// inspect, asks again with the negotiated one.
func openLogStream(ctx context.Context, cli *client.Client, id string, q url.Values) (io.ReadCloser, error) {
	host, err := client.ParseHostURL(cli.DaemonHost())
	if err != nil {
		return nil, err
	}
	p := "/containers/" + url.PathEscape(id) + "/logs"
	if v := cli.ClientVersion(); v != "" {
		p = "/v" + strings.TrimPrefix(v, "v") + p
	}
	u := &url.URL{Scheme: "http", Host: host.Host, Path: path.Join(host.Path, p), RawQuery: q.Encode()}
	if host.Scheme != "tcp" {
		u.Host = client.DummyHost // a socket or pipe has no host name; the client sends this one
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "gantry-docker-driver")
	conn, err := cli.Dialer()(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker daemon at %s: %w", cli.DaemonHost(), err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// A quiet container sends nothing for hours; keep-alives notice
		// a peer that is gone.
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	fail := func(err error) (io.ReadCloser, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	limit := &headerLimit{r: conn, n: maxStreamHeader}
	resp, err := http.ReadResponse(bufio.NewReaderSize(limit, streamReadBuffer), req)
	if err != nil {
		return fail(err)
	}
	limit.n = -1
	if ctx.Err() != nil { // cancelled before the close-on-cancel ran
		_, err := fail(ctx.Err())
		_ = resp.Body.Close() // after the connection: nothing left to drain
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxStreamError))
		var msg struct {
			Message string `json:"message"`
		}
		text := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &msg) == nil && msg.Message != "" {
			text = msg.Message
		}
		_, err := fail(fmt.Errorf("daemon answered %s: %s", resp.Status, text))
		_ = resp.Body.Close() // after the connection: nothing left to drain
		return nil, err
	}
	return &logStream{body: resp.Body, conn: conn, stop: stop}, nil
}
