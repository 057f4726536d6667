package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-project/gantry/api"
)

// TestLogProxyRefusesRedirects: an "agent" that answers the log proxy with
// a redirect to another address does not get the server to fetch that
// address: the proxy answers 502 naming the redirect.
func TestLogProxyRefusesRedirects(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "secret from an internal address\n")
	}))
	defer internal.Close()
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/latest/meta-data", http.StatusFound)
	}))
	defer agent.Close()

	n := fakeNode("n1", 2000, 2048)
	n.HTTPAddr = strings.TrimPrefix(agent.URL, "http://")
	if _, err := c.RegisterNode(bg, n); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 1)); err != nil {
		t.Fatal(err)
	}
	id := waitLive(t, c, "web", 1)[0].ID
	rc, err := c.AllocLogs(bg, id, api.LogOptions{})
	if err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("logs through a redirect: %q, want 502", b)
	}
	if !isStatus(err, http.StatusBadGateway) || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("logs through a redirect: %v, want 502 naming the redirect", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the proxy followed the redirect (%d requests to the target)", n)
	}
}

// TestNodeRegisterChecksHTTPAddr: the agent address a node registers must
// be host:port and nothing else, since the server dials it.
func TestNodeRegisterChecksHTTPAddr(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"10.0.0.1:4648", true},
		{"[fd00::1]:4648", true},
		{"agent-1.example.com:4648", true},
		{"", true}, // no agent API: the log proxy says so
		{"http://10.0.0.1:4648", false},
		{"10.0.0.1:4648/path", false},
		{"10.0.0.1", false},
		{"10.0.0.1:0", false},
		{"10.0.0.1:65536", false},
		{"10.0.0.1:http", false},
		{":4648", false},
		{"0.0.0.0:4648", false},
		{"[::]:4648", false},
		{"user@10.0.0.1:4648", false},
		{"a b:4648", false},
		{"-bad-.example.com:4648", false},
	} {
		n := fakeNode("n1", 2000, 2048)
		n.HTTPAddr = tc.addr
		_, err := c.RegisterNode(bg, n)
		switch {
		case tc.ok && err != nil:
			t.Errorf("http_addr %q: %v, want it accepted", tc.addr, err)
		case !tc.ok && (!isStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "http_addr")):
			t.Errorf("http_addr %q: %v, want 400 naming http_addr", tc.addr, err)
		}
	}
}
