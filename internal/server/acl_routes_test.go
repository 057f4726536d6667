package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/structs"
)

// aclServer starts a server with ACLs on, bootstraps it, and returns it
// with a management client.
func aclServer(t *testing.T) (*Server, *api.Client, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.ACL.Enabled = true
	s, anon := startServer(t, cfg)
	boot, err := anon.ACLBootstrap(bg)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if boot.SecretID == "" || boot.Type != structs.ACLManagementToken || boot.SecretHash != "" {
		t.Fatalf("bootstrap answer: %+v", boot)
	}
	return s, tokenClient(t, s, boot.SecretID), boot.SecretID
}

// tokenClient is a client of s presenting secret.
func tokenClient(t *testing.T, s *Server, secret string) *api.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + s.HTTPAddr(), HTTPClient: hc, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenWith makes a client token holding one policy with the rules given.
func tokenWith(t *testing.T, mgmt *api.Client, name, rules string) string {
	t.Helper()
	// In a cluster, a 503 (an election under way) is retried as a client does.
	retryUnavailable(t, "policy "+name+"\n"+rules, func() error {
		_, err := mgmt.ApplyACLPolicy(bg, &api.ACLPolicy{Name: name, Rules: rules})
		return err
	})
	var tok *api.ACLToken
	retryUnavailable(t, "token "+name, func() error {
		var err error
		tok, err = mgmt.CreateACLToken(bg, &api.ACLTokenCreateRequest{Name: name, Policies: []string{name}})
		return err
	})
	return tok.SecretID
}

// grantRules is a policy granting exactly what rule asks for.
func grantRules(r aclRule) string {
	switch r.kind {
	case aclNamespace, aclAnyNamespace:
		return fmt.Sprintf("namespace %q { capabilities = [%q] }", structs.DefaultNamespace, r.cap.String())
	case aclNode:
		return fmt.Sprintf("node { policy = %q }", r.level)
	case aclOperator:
		return fmt.Sprintf("operator { policy = %q }", r.level)
	}
	return `node { policy = "read" }` // any token will do
}

// lackRules is a policy granting everything near what rule asks for but
// not it: the other capabilities in every namespace, the level below,
// everything else at write.
func lackRules(r aclRule) string {
	nsCaps := []string{`"read"`, `"submit"`, `"scale"`, `"logs"`, `"alloc-exec"`, `"alloc-lifecycle"`}
	node, op := "write", "write"
	switch r.kind {
	case aclNamespace:
		nsCaps = slicesWithout(nsCaps, fmt.Sprintf("%q", r.cap.String()))
	case aclAnyNamespace:
		nsCaps = slicesWithout(nsCaps, fmt.Sprintf("%q", r.cap.String()))
		op = "deny"
	case aclNode:
		node = map[acl.Level]string{acl.LevelRead: "deny", acl.LevelWrite: "read"}[r.level]
	case aclOperator:
		op = map[acl.Level]string{acl.LevelRead: "deny", acl.LevelWrite: "read"}[r.level]
	}
	return fmt.Sprintf("namespace \"*\" { capabilities = [%s] }\nnode { policy = %q }\noperator { policy = %q }",
		strings.Join(nsCaps, ", "), node, op)
}

func slicesWithout(s []string, drop string) []string {
	var out []string
	for _, v := range s {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}

// routeCase is how TestRouteACLTable calls one route: the URL (path and
// query; "" = the pattern), the body, and the status the call answers with
// a token that is allowed (the route's documented answer to this call).
type routeCase struct {
	url, body string
	ok        int
}

// TestRouteACLTable calls every route of the route table three times with
// ACLs on: without a token (401, or the route's answer for a public
// route), with a token that holds everything but what the route's rule
// asks for (403), and with a token that holds exactly that (the route's
// documented status). A route without a rule, or without a case here,
// fails: every new route declares who may call it.
func TestRouteACLTable(t *testing.T) {
	s, mgmt, mgmtSecret := aclServer(t)

	// Fixtures the calls address.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := mgmt.RegisterJob(bg, mockJob("web", 1))
	must(err)
	_, err = mgmt.RegisterJob(bg, mockJob("victim", 1))
	must(err)
	_, err = mgmt.RegisterNode(bg, fakeNode("n1", 4000, 4096))
	must(err)
	waitFor(t, 10*time.Second, "web placed", func() (bool, string) {
		allocs, _, err := mgmt.JobAllocations(bg, "web", nil)
		return err == nil && len(allocs) == 1, fmt.Sprint(len(allocs), err)
	})
	allocs, _, err := mgmt.JobAllocations(bg, "web", nil)
	must(err)
	allocID := allocs[0].ID
	_, err = mgmt.ApplyNamespace(bg, &api.Namespace{Name: "scratch"})
	must(err)
	_, err = mgmt.ApplyACLPolicy(bg, &api.ACLPolicy{Name: "scratch", Rules: `node { policy = "read" }`})
	must(err)
	scratchTok, err := mgmt.CreateACLToken(bg, &api.ACLTokenCreateRequest{Policies: []string{"scratch"}})
	must(err)

	cases := map[string]routeCase{
		"PUT /v1/jobs":                     {body: `{"job":{"name":"new","count":0,"driver":"mock","resources":{"cpu":1,"memory_mb":1}}}`, ok: 200},
		"GET /v1/jobs":                     {ok: 200},
		"GET /v1/job/{id}":                 {url: "/v1/job/web", ok: 200},
		"GET /v1/job/{id}/status":          {url: "/v1/job/web/status", ok: 200},
		"GET /v1/job/{id}/allocations":     {url: "/v1/job/web/allocations", ok: 200},
		"POST /v1/job/{id}/scale":          {url: "/v1/job/web/scale", body: `{"count":1}`, ok: 200},
		"DELETE /v1/job/{id}":              {url: "/v1/job/victim", ok: 200},
		"POST /v1/job/{id}/plan":           {url: "/v1/job/web/plan", body: `{"job":{"name":"web","count":2,"driver":"mock","resources":{"cpu":1,"memory_mb":1}}}`, ok: 200},
		"GET /v1/job/{id}/versions":        {url: "/v1/job/web/versions", ok: 200},
		"POST /v1/job/{id}/revert":         {url: "/v1/job/web/revert", body: `{"version":9}`, ok: 404},
		"POST /v1/job/{id}/dispatch":       {url: "/v1/job/web/dispatch", body: `{}`, ok: 400},
		"GET /v1/job/{id}/deployment":      {url: "/v1/job/web/deployment", ok: 404}, // web has no update block
		"GET /v1/deployments":              {ok: 200},
		"GET /v1/deployment/{id}":          {url: "/v1/deployment/nope", ok: 404},
		"POST /v1/deployment/{id}/pause":   {url: "/v1/deployment/nope/pause", ok: 404},
		"POST /v1/deployment/{id}/resume":  {url: "/v1/deployment/nope/resume", ok: 404},
		"POST /v1/deployment/{id}/fail":    {url: "/v1/deployment/nope/fail", ok: 404},
		"POST /v1/deployment/{id}/promote": {url: "/v1/deployment/nope/promote", ok: 404},
		"POST /v1/node/register":           {body: `{"node":{"id":"n2","name":"two","capacity":{"cpu":1000,"memory_mb":1024}}}`, ok: 200},
		"POST /v1/node/{id}/heartbeat":     {url: "/v1/node/n1/heartbeat", body: `{}`, ok: 200},
		"GET /v1/nodes":                    {ok: 200},
		"GET /v1/node/{id}":                {url: "/v1/node/n1", ok: 200},
		"POST /v1/node/{id}/drain":         {url: "/v1/node/n2/drain", body: `{"enable":false}`, ok: 200},
		"GET /v1/node/{id}/allocations":    {url: "/v1/node/n1/allocations", ok: 200},
		"POST /v1/node/{id}/allocations":   {url: "/v1/node/n1/allocations", body: `{"updates":[]}`, ok: 200},
		"POST /v1/nodes/allocations/watch": {url: "/v1/nodes/allocations/watch?wait=10ms", body: `{"nodes":{"n1":{"index":0,"known":0}}}`, ok: 200},
		"POST /v1/nodes/allocations":       {body: `{"nodes":{"n1":[]}}`, ok: 200},
		"PUT /v1/nodes/heartbeat":          {body: `{"node_ids":["n1"]}`, ok: 200},
		"GET /v1/allocations":              {ok: 200},
		"GET /v1/allocation/{id}":          {url: "/v1/allocation/" + allocID, ok: 200},
		"GET /v1/allocation/{id}/logs":     {url: "/v1/allocation/" + allocID + "/logs", ok: http.StatusBadGateway}, // the fake node has no agent
		// Without an upgrade exec is refused as a bad request; the
		// fake node has no agent for restart and signal; stop is a
		// write on the servers (and runs after them: table order).
		"POST /v1/allocation/{id}/exec":       {url: "/v1/allocation/" + allocID + "/exec?cmd=true", ok: http.StatusBadRequest},
		"POST /v1/allocation/{id}/restart":    {url: "/v1/allocation/" + allocID + "/restart", body: `{}`, ok: http.StatusBadGateway},
		"POST /v1/allocation/{id}/signal":     {url: "/v1/allocation/" + allocID + "/signal", body: `{"signal":"SIGHUP"}`, ok: http.StatusBadGateway},
		"POST /v1/allocation/{id}/stop":       {url: "/v1/allocation/" + allocID + "/stop", ok: 200},
		"GET /v1/namespaces":                  {ok: 200},
		"GET /v1/services":                    {ok: 200},
		"GET /v1/service/{name}":              {url: "/v1/service/web", ok: 200},
		"GET /v1/catalog":                     {ok: 200},
		"PUT /v1/namespace/{name}":            {url: "/v1/namespace/other", body: `{"quota":{"memory_mb":1024}}`, ok: 200},
		"DELETE /v1/namespace/{name}":         {url: "/v1/namespace/scratch", ok: 200},
		"POST /v1/acl/bootstrap":              {ok: http.StatusBadRequest}, // done above: refused, naming the reset index
		"GET /v1/acl/policies":                {ok: 200},
		"GET /v1/acl/policy/{name}":           {url: "/v1/acl/policy/scratch", ok: 200},
		"PUT /v1/acl/policy/{name}":           {url: "/v1/acl/policy/another", body: `{"rules":"node { policy = \"read\" }"}`, ok: 200},
		"DELETE /v1/acl/policy/{name}":        {url: "/v1/acl/policy/another", ok: 200},
		"GET /v1/acl/tokens":                  {ok: 200},
		"POST /v1/acl/token":                  {body: `{"policies":["scratch"]}`, ok: 200},
		"GET /v1/acl/token/self":              {ok: 200},
		"GET /v1/acl/token/{accessor}":        {url: "/v1/acl/token/" + scratchTok.AccessorID, ok: 200},
		"DELETE /v1/acl/token/{accessor}":     {url: "/v1/acl/token/" + scratchTok.AccessorID, ok: 200},
		"GET /v1/status/leader":               {ok: 200},
		"GET /v1/status/self":                 {ok: 200},
		"GET /v1/operator/raft/configuration": {ok: 200},
		"DELETE /v1/operator/raft/peer":       {url: "/v1/operator/raft/peer?id=nobody", ok: http.StatusNotFound},
		"POST /v1/operator/raft/join":         {body: `{}`, ok: http.StatusBadRequest}, // an empty member is refused
		"GET /v1/operator/snapshot":           {ok: 200},
		"PUT /v1/operator/snapshot":           {body: "not a backup", ok: http.StatusBadRequest},
		"GET /v1/scheduler/status":            {ok: 200},
		"POST /v1/system/gc":                  {ok: 200},
		"GET /metrics":                        {ok: 200},
		"POST /v1/jobs/parse":                 {body: `{"job_spec":"name: p\ndriver: mock\nresources: {cpu: 1, memory_mb: 1}\n"}`, ok: 200},
		"GET /v1/nodes/usage":                 {ok: 200},
		// A resume from an index the stream no longer holds answers one
		// line saying so and ends, so the call returns.
		"GET /v1/event/stream": {url: "/v1/event/stream?index=1", ok: 200},
		"GET /ui/":             {ok: 200},
		// The test server is monolithic: the framework API answers, for
		// a caller it allows, that it needs two-level scheduling.
		"POST /v1/frameworks/scheduler": {body: `{"type":"SUBSCRIBE"}`, ok: http.StatusBadRequest},
		"GET /v1/frameworks":            {ok: http.StatusBadRequest},
		"GET /v1/framework/{id}":        {url: "/v1/framework/x", ok: http.StatusBadRequest},
		"GET /{$}":                      {url: "/", ok: 200}, // redirected to /ui/
	}

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	call := func(method, url, body, secret string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+s.HTTPAddr()+url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.Header.Set(api.TokenHeader, secret)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var er api.ErrorResponse
		_ = json.Unmarshal(b, &er)
		return resp.StatusCode, er.Error
	}

	seen := map[string]bool{}
	for _, e := range s.endpoints() {
		route := e.method + " " + e.path
		seen[route] = true
		t.Run(route, func(t *testing.T) {
			if e.acl.kind == aclUnset {
				t.Fatalf("%s declares no ACL rule: add acl: to its row in Server.endpoints", route)
			}
			c, ok := cases[route]
			if !ok {
				t.Fatalf("%s has no case in TestRouteACLTable: add one with the status its allowed call answers", route)
			}
			url := c.url
			if url == "" {
				url = e.path
			}
			if e.acl.kind == aclPublic {
				if code, msg := call(e.method, url, c.body, ""); code != c.ok {
					t.Fatalf("public, without a token: %d %q, want %d", code, msg, c.ok)
				}
				return
			}
			code, msg := call(e.method, url, c.body, "")
			if code != http.StatusUnauthorized || !strings.Contains(msg, "permission denied") {
				t.Errorf("without a token: %d %q, want 401 permission denied", code, msg)
			}
			if code, msg := call(e.method, url, c.body, "not-a-token"); code != http.StatusUnauthorized || !strings.Contains(msg, "token not found") {
				t.Errorf("with an unknown token: %d %q, want 401 token not found", code, msg)
			}
			if e.acl.kind != aclAnyToken {
				lacking := tokenWith(t, mgmt, "lack-"+sanitizeName(route), lackRules(e.acl))
				code, msg := call(e.method, url, c.body, lacking)
				if code != http.StatusForbidden || !strings.Contains(msg, "lacks") {
					t.Errorf("with a token lacking %s: %d %q, want 403", e.acl, code, msg)
				}
			}
			right := mgmtSecret
			if e.acl.kind != aclManagement {
				right = tokenWith(t, mgmt, "grant-"+sanitizeName(route), grantRules(e.acl))
			}
			if code, msg := call(e.method, url, c.body, right); code != c.ok {
				t.Errorf("with a token holding %s: %d %q, want %d", e.acl, code, msg, c.ok)
			}
		})
	}
	for route := range cases {
		if !seen[route] {
			t.Errorf("case %s names no route of the table", route)
		}
	}
}

// sanitizeName turns a route into a policy name.
func sanitizeName(route string) string {
	var b strings.Builder
	for _, r := range route {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestRouteRulesDocumented checks docs/api.md's table of access rules
// against the route table: every route is documented with the rule it
// declares, and the table names no route that does not exist. A rule
// changed in the code alone, or in the docs alone, fails.
func TestRouteRulesDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([A-Z]+ /[^`]*)` \\| ([^|]+) \\|$")
	documented := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			documented[m[1]] = strings.TrimSpace(m[2])
		}
	}
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.endpoints() {
		route := e.method + " " + e.path
		got, ok := documented[route]
		switch {
		case !ok:
			t.Errorf("%s (rule %q) is missing from docs/api.md's table of access rules", route, e.acl)
		case got != e.acl.String():
			t.Errorf("%s: docs/api.md says %q, the route table %q", route, got, e.acl)
		}
		delete(documented, route)
	}
	for route := range documented {
		t.Errorf("docs/api.md documents a rule for %s, which is not a route", route)
	}
}
