package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/gantry-project/gantry/api"
)

// ErrNotConverged is wrapped by the error of a `job run` that timed out or
// whose batch copies failed; the CLI exits with code 2 for it, so scripts
// can tell a deployment that did not succeed from a command that could not
// run.
var ErrNotConverged = errors.New("deployment did not succeed")

// Humanize rewrites an error from the API client into a message a person
// can act on: an unreachable server names the address and what to start, a
// rejected document lists its fields.
func (e *Env) Humanize(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotConverged) {
		return err
	}
	addrs := strings.Join(e.Client.Addresses(), ", ")
	var apiErr *api.APIError
	switch {
	case errors.As(err, &apiErr):
		return humanizeAPI(apiErr)
	case unreachable(err):
		return fmt.Errorf("cannot reach gantry server at %s: is `gantry server` or `gantry dev` running? (%s)", addrs, rootCause(err))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out waiting for gantry server at %s: %w", addrs, err)
	}
	return err
}

func humanizeAPI(e *api.APIError) error {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	switch e.StatusCode {
	case http.StatusServiceUnavailable:
		return fmt.Errorf("the cluster has no leader (servers may be electing one; retry in a moment): %s", msg)
	case http.StatusUnauthorized:
		if !strings.Contains(msg, "GANTRY_TOKEN") {
			msg += " (the CLI sends the token of --token or GANTRY_TOKEN)"
		}
		return errors.New(msg)
	case http.StatusBadRequest:
		if len(e.Fields) == 0 {
			return fmt.Errorf("rejected by the server: %s", msg)
		}
		// The message often repeats the fields inline ("invalid job: a: b;
		// c: d"); keep its head and list the fields one per line.
		head := msg
		if i := strings.Index(msg, e.Fields[0].Field+": "+e.Fields[0].Rule); i > 0 {
			head = msg[:i]
		}
		var b strings.Builder
		b.WriteString(strings.TrimRight(head, ": ;") + ":")
		for _, f := range e.Fields {
			fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Rule)
		}
		return errors.New(b.String())
	}
	return errors.New(msg)
}

// unreachable reports whether err is a failure to connect (refused, no
// route, unknown host), as opposed to an answer from a server.
func unreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// rootCause returns the innermost network error's text ("connect:
// connection refused"), without the URL the message already names.
func rootCause(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Error()
	}
	return err.Error()
}
