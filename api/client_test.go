package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestWriteFailover: a client with several addresses sends a request to
// the next one only when the first cannot have applied it: a connection
// that was never made, or a 503 without an unknown outcome. A write that
// may have reached a server (connection lost mid-request, or a 503 saying
// its outcome is unknown) is reported, not sent again, since applying it
// twice can reorder it after a write that came between. Reads always
// fail over.
func TestWriteFailover(t *testing.T) {
	notLeader := func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"this server is not the cluster leader"}`))
	}
	unknown := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(OutcomeHeader, "unknown")
		notLeader(w, nil)
	}
	cut := func(w http.ResponseWriter, _ *http.Request) { // the server dies mid-request
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	closedAddr := func(t *testing.T) string { // nothing listens: the dial fails
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	for _, tc := range []struct {
		name     string
		first    http.HandlerFunc // nil: an address where nothing listens
		method   string
		failover bool
	}{
		{"write, no connection", nil, http.MethodPut, true},
		{"write, not leader", notLeader, http.MethodPut, true},
		{"write, outcome unknown", unknown, http.MethodPut, false},
		{"write, connection lost", cut, http.MethodPost, false},
		{"read, outcome unknown", unknown, http.MethodGet, true},
		{"read, connection lost", cut, http.MethodGet, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var second atomic.Int64
			b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				second.Add(1)
				_, _ = w.Write([]byte(`{}`))
			}))
			defer b.Close()
			first := ""
			if tc.first == nil {
				first = closedAddr(t)
			} else {
				a := httptest.NewServer(tc.first)
				defer a.Close()
				first = a.URL
			}
			c, err := NewClient(Config{Address: first + "," + b.URL})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.send(context.Background(), tc.method, "/v1/jobs", nil, []byte(`{}`), "application/json", "")
			if resp != nil {
				resp.Body.Close()
			}
			if got := second.Load() == 1; got != tc.failover {
				t.Fatalf("sent to the second server: %v (err %v), want %v", got, err, tc.failover)
			}
			if !tc.failover && err == nil {
				t.Fatalf("no error for a write whose outcome is unknown")
			}
		})
	}
}
