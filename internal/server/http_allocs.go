package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

func (s *Server) allocList(w http.ResponseWriter, r *http.Request) (any, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return nil, err
	}
	a := s.aclOf(r)
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		all := snap.AllocsWatch(ws)
		out := make([]*structs.Allocation, 0, len(all))
		for _, al := range all {
			if aNS := structs.JobNamespace(al.JobID); ns == structs.AllNamespaces && a.AllowNamespace(aNS, acl.CapRead) || aNS == ns {
				out = append(out, al.Stub())
			}
		}
		return snap.TableIndex(state.TableAllocs), out, nil
	})
}

// allocInScope checks that an allocation found by ID belongs to the
// request's namespace (any the caller holds want in, for "*"); an
// allocation elsewhere is not found there.
func (s *Server) allocInScope(r *http.Request, a *structs.Allocation, want acl.Capability) error {
	ns, err := requestNamespace(r)
	if err != nil {
		return err
	}
	aNS := structs.JobNamespace(a.JobID)
	if ns == structs.AllNamespaces {
		if !s.aclOf(r).AllowNamespace(aNS, want) {
			return forbidden("permission denied: allocation %s is in namespace %s, where the token lacks %s", a.ID, aNS, want)
		}
		return nil
	}
	if aNS != ns {
		return notFound("allocation %q not found in namespace %s (give its namespace with -n/?namespace=)", a.ID, ns)
	}
	return nil
}

func (s *Server) allocGet(w http.ResponseWriter, r *http.Request) (any, error) {
	ref := r.PathValue("id")
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		a, err := snap.AllocByPrefix(ws, ref)
		if err != nil {
			return 0, nil, err
		}
		if err := s.allocInScope(r, a, acl.CapRead); err != nil {
			return 0, nil, err
		}
		return snap.TableIndex(state.TableAllocs), a, nil
	})
}

// newLogClient is the client of the log proxy. It follows no redirects:
// the proxy reaches exactly the agent address a node registered. tlsCfg
// is nil without TLS.
func newLogClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       time.Minute,
			TLSClientConfig:       tlsCfg,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// allocLogs proxies a task's log from the agent running it, flushing bytes
// to the client as they arrive (follow mode streams until the task is dead
// and the log drained, or the client goes away).
func (s *Server) allocLogs(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	stream := q.Get("type")
	if stream == "" {
		stream = "stdout"
	}
	if stream != "stdout" && stream != "stderr" {
		return nil, badRequest("type: must be \"stdout\" or \"stderr\" (got %q)", stream)
	}
	follow := false
	switch v := q.Get("follow"); v {
	case "", "false":
	case "true":
		follow = true
	default:
		return nil, badRequest("follow: must be \"true\" or \"false\" (got %q)", v)
	}
	var offset int64
	if v := q.Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("offset: must be a non-negative integer (got %q)", v)
		}
		offset = n
	}

	snap := s.state.Snapshot()
	a, err := snap.AllocByPrefix(nil, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.allocInScope(r, a, acl.CapLogs); err != nil {
		return nil, err
	}
	node := snap.NodeByID(a.NodeID)
	if node == nil || node.HTTPAddr == "" {
		return nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: node %s has no known agent address to read logs from", a.ID, a.NodeID)}
	}
	// Registration checks the address; a node registered by an older
	// build may hold anything.
	if err := checkHTTPAddr(node.HTTPAddr); err != nil {
		return nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: node %s has an invalid agent address %q: %v", a.ID, node.Name, node.HTTPAddr, err)}
	}
	u := url.URL{Scheme: s.scheme(), Host: node.HTTPAddr, Path: "/v1/agent/allocation/" + url.PathEscape(a.ID) + "/logs"}
	aq := url.Values{"type": {stream}, "offset": {strconv.FormatInt(offset, 10)}}
	if task := q.Get("task"); task != "" {
		aq.Set("task", task) // the agent checks it against the allocation's tasks
	}
	if follow {
		aq.Set("follow", "true")
	}
	u.RawQuery = aq.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("allocation %s: building log request: %w", a.ID, err)
	}
	resp, err := s.logClient.Do(req)
	if err != nil {
		return nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: agent of node %s (%s) is unreachable: %v", a.ID, node.Name, node.HTTPAddr, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// An agent never redirects; following one would let whoever
		// registered the node make the server fetch any URL and hand
		// back the answer.
		return nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: agent of node %s (%s) answered with a redirect (%d to %q); the log proxy does not follow redirects",
				a.ID, node.Name, node.HTTPAddr, resp.StatusCode, resp.Header.Get("Location"))}
	}
	if resp.StatusCode != http.StatusOK {
		// Relay the agent's answer (e.g. 404 with a JSON error) as is.
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
		return nil, nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, nil // client went away
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && r.Context().Err() == nil {
				s.logger.Warn("log stream from agent ended", "alloc", a.ID, "node", node.ID, "error", rerr)
			}
			return nil, nil
		}
	}
}
