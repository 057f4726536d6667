package server

import (
	"net/http/httptest"
	"testing"

	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkACLCheck is the access check of an agent's heartbeat or report
// with ACLs on: the token's permissions come from the resolver's cache
// (warm after the first request), then one level test. Run with
// `go test -run '^$' -bench ACLCheck ./internal/server`.
func BenchmarkACLCheck(b *testing.B) {
	cfg := testConfig(b)
	cfg.ACL.Enabled = true
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	const secret = "6f1c3a52-8d0e-4b7a-9c2f-1e5d7a9b3c40"
	if err := s.state.UpsertACLPolicies(2, []*structs.ACLPolicy{{Name: "agent", Rules: `node { policy = "write" }`}}); err != nil {
		b.Fatal(err)
	}
	if err := s.state.UpsertACLTokens(3, []*structs.ACLToken{{AccessorID: "a", SecretHash: acl.HashSecret(secret),
		Type: structs.ACLClientToken, Policies: []string{"agent"}}}); err != nil {
		b.Fatal(err)
	}
	rule := nodeRule(acl.LevelWrite)
	for _, bc := range []struct {
		name string
		warm bool
	}{{"cached", true}, {"resolve", false}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("PUT", "/v1/nodes/heartbeat", nil)
			req.Header.Set(TokenHeader, secret)
			b.ReportAllocs()
			for b.Loop() {
				if !bc.warm {
					s.acls.mu.Lock()
					clear(s.acls.byKey)
					s.acls.mu.Unlock()
				}
				if _, err := s.authorize(rule, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
