package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers on http.DefaultServeMux, served only here
)

// servePprof serves net/http/pprof on addr for a server, an agent or a
// peer run with --pprof; stopped hears why it stopped. Profiles carry no credentials check, so the address must
// be a loopback one; the listener is bound before returning so a taken
// address is an error to the caller, not a log line.
func servePprof(addr string, stopped func(error)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--pprof %q: profiles are served without TLS or ACL checks, so only on a loopback address (e.g. 127.0.0.1:6060)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	// the API servers use their own muxes, so profiles are only here
	go func() { stopped(http.Serve(ln, nil)) }()
	return nil
}
