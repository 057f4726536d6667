package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Timeouts of the API's connections (docs/api.md, "Limits and timeouts").
//
// The http.Server has ReadHeaderTimeout and IdleTimeout, and neither
// ReadTimeout nor WriteTimeout. WriteTimeout runs from the start of a
// request to the end of its response: blocking queries (up to 5m) and log
// streams (unbounded) outlive any sensible value. ReadTimeout is one
// deadline for the whole request, body included: a value that lets a
// 4 GiB backup upload finish on a slow link lets a client dribbling a
// byte a second hold a request for as long.
//
// Bodies get a progress deadline instead, set per request through
// http.ResponseController: each MiB (or the whole of a shorter body) must
// arrive within Config.BodyTimeout, so a large upload at a decent rate is
// never cut, while a trickle is cut after the timeout with 408. net/http
// lifts the read deadline itself when the body has been read whole (it
// starts its background read, which notices a client going away), so a
// long poll sent with a body (the node allocation watch) still waits as
// long as it asks to; and it lifts the write deadline a download set once
// the response is finished, before the next request on the connection.

// bodyProgressBytes is the amount of a body (or download) that must
// arrive (be accepted) within Config.BodyTimeout.
const bodyProgressBytes = 1 << 20

// deadlineBody is a request body under a progress deadline.
type deadlineBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	// left is the number of bytes still to read before the deadline
	// moves on.
	left int64
	done bool
}

func newDeadlineBody(w http.ResponseWriter, body io.ReadCloser, timeout time.Duration) io.ReadCloser {
	b := &deadlineBody{body: body, rc: http.NewResponseController(w), timeout: timeout, left: bodyProgressBytes}
	// Errors: the writer cannot set deadlines (a test recorder). The
	// body is then read without one, as before.
	_ = b.rc.SetReadDeadline(time.Now().Add(timeout))
	return b
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if b.done {
		return n, err
	}
	b.left -= int64(n)
	switch {
	case err == nil:
		if b.left <= 0 {
			b.left = bodyProgressBytes
			_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
		}
	case errors.Is(err, io.EOF):
		// net/http lifts the deadline (see above).
		b.done = true
	case isTimeout(err):
		b.done = true
		return n, &httpError{code: http.StatusRequestTimeout,
			msg: fmt.Sprintf("request body: less than %d bytes arrived in %s (a body must arrive at 1 MiB per %s or faster)",
				bodyProgressBytes, b.timeout, b.timeout)}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// deadlineWriter is a response under a progress deadline: each MiB must
// be accepted by the client within timeout. A backup download holds a
// snapshot of the whole state; a client that stops reading must not hold
// it for ever.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
	left    int64
}

func newDeadlineWriter(w http.ResponseWriter, timeout time.Duration) *deadlineWriter {
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.left <= 0 {
		d.left = bodyProgressBytes
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	}
	n, err := d.w.Write(p)
	d.left -= int64(n)
	return n, err
}
