package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// TestWrongMethodAnswers405 sends every method to every path of the route
// table: a method the path does not take answers 405 with an Allow header
// listing exactly the methods it takes (HEAD wherever GET is), and a JSON
// error; a method it takes reaches its handler. Unknown paths stay 404.
func TestWrongMethodAnswers405(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	do := func(method, path string) (int, http.Header, api.ErrorResponse) {
		t.Helper()
		// A stream (GET /v1/event/stream) answers at once and goes on:
		// read what comes within a few seconds.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+s.HTTPAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var er api.ErrorResponse
		_ = json.Unmarshal(b, &er)
		return resp.StatusCode, resp.Header, er
	}

	// The methods each path of the table takes: those of every route
	// whose pattern matches it ("/v1/node/register" is also a node ID).
	endpoints := s.endpoints()
	allowed := map[string][]string{} // URL -> methods
	for _, e := range endpoints {
		url := strings.ReplaceAll(strings.ReplaceAll(e.path, "{id}", "x"), "{$}", "")
		for _, o := range endpoints {
			if matchPath(strings.ReplaceAll(o.path, "{$}", ""), url) {
				allowed[url] = append(allowed[url], o.method)
				if o.method == http.MethodGet {
					allowed[url] = append(allowed[url], http.MethodHead)
				}
			}
		}
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
	for url, ok := range allowed {
		slices.Sort(ok)
		ok = slices.Compact(ok)
		for _, m := range methods {
			code, h, er := do(m, url)
			if slices.Contains(ok, m) {
				if code == http.StatusMethodNotAllowed || strings.Contains(er.Error, "no such endpoint") {
					t.Errorf("%s %s: %d %q, want it served", m, url, code, er.Error)
				}
				continue
			}
			if code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, url, code)
				continue
			}
			if got, want := h.Get("Allow"), strings.Join(ok, ", "); got != want {
				t.Errorf("%s %s: Allow %q, want %q", m, url, got, want)
			}
			if m != http.MethodHead && !strings.Contains(er.Error, "not allowed") {
				t.Errorf("%s %s: error %q, want a JSON error saying the method is not allowed", m, url, er.Error)
			}
		}
	}
	for _, path := range []string{"/v1/nothing", "/v1/job/x/nothing", "/v1"} {
		if code, _, er := do("GET", path); code != http.StatusNotFound || !strings.Contains(er.Error, "no such endpoint") {
			t.Errorf("GET %s: %d %q, want 404", path, code, er.Error)
		}
	}
}

// TestWrongMethodOnKnownPaths: a wrong method on a known path answers 405
// with Allow, not 404.
func TestWrongMethodOnKnownPaths(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	defer http.DefaultClient.CloseIdleConnections()
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v1/jobs", "GET, HEAD, PUT"},
		{"PUT", "/v1/job/web", "DELETE, GET, HEAD"},
		{"GET", "/v1/nodes/heartbeat", "PUT"},
		{"POST", "/v1/operator/snapshot", "GET, HEAD, PUT"},
		{"DELETE", "/metrics", "GET, HEAD"},
	} {
		req, err := http.NewRequest(tc.method, "http://"+s.HTTPAddr()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
	}
}

// matchPath reports whether a route path ("/v1/job/{id}") matches a URL
// path, a wildcard standing for one segment.
func matchPath(pattern, path string) bool {
	p, u := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(p) != len(u) {
		return false
	}
	for i := range p {
		if p[i] != u[i] && !strings.HasPrefix(p[i], "{") {
			return false
		}
	}
	return true
}
