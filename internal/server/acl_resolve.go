package server

import (
	"log/slog"
	"sync"

	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// identity is who a request acts as: the token it presented (nil for an
// anonymous request) and that token's compiled permissions.
type identity struct {
	token *structs.ACLToken
	acl   *acl.ACL
}

// anonymousIdentity is the identity of requests without a token when no
// anonymous policy exists.
var anonymousIdentity = &identity{acl: acl.DenyAll}

// maxCachedTokens bounds the resolver's cache (the secrets in it come from
// clients). Past it the cache starts over: a burst of distinct valid
// tokens costs re-resolving, never memory.
const maxCachedTokens = 4096

// aclResolver turns secrets into identities. Resolving reads the token and
// its policies from a state snapshot and compiles them; the result is
// cached per secret, valid while the store's ACL generation (which every
// policy or token write and every Restore moves) has not changed. The
// agents' heartbeats and reports, tens of thousands a second in c1m-like,
// all present one node token: each is then a read-locked map lookup.
// Unknown secrets are never cached (any string is one).
type aclResolver struct {
	store  *state.Store
	logger *slog.Logger

	mu    sync.RWMutex
	gen   uint64               // guarded by mu: the generation byKey holds
	byKey map[string]*identity // guarded by mu: secret ("" anonymous) -> identity
}

func newACLResolver(st *state.Store, logger *slog.Logger) *aclResolver {
	return &aclResolver{store: st, logger: logger, byKey: map[string]*identity{}}
}

// resolve returns the identity of a secret ("" for an anonymous request),
// or nil if no token has that secret.
func (r *aclResolver) resolve(secret string) *identity {
	gen := r.store.ACLGeneration()
	r.mu.RLock()
	id, ok := r.byKey[secret]
	current := r.gen == gen
	r.mu.RUnlock()
	if ok && current {
		return id
	}
	// The generation was read before the snapshot: if a write lands in
	// between, the entry is filed under the old generation and never
	// served once the new one is seen.
	id = r.compute(r.store.Snapshot(), secret)
	if id == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case gen > r.gen:
		clear(r.byKey)
		r.gen = gen
	case gen < r.gen:
		return id // computed from an older state than the cache holds
	}
	if len(r.byKey) >= maxCachedTokens {
		clear(r.byKey)
	}
	r.byKey[secret] = id
	return id
}

// compute resolves a secret against a snapshot.
func (r *aclResolver) compute(snap *state.Snapshot, secret string) *identity {
	if secret == "" {
		p := snap.ACLPolicy(nil, structs.AnonymousPolicy)
		if p == nil {
			return anonymousIdentity
		}
		return &identity{acl: acl.Compile(r.parse(p))}
	}
	tok := snap.ACLTokenBySecretHash(acl.HashSecret(secret))
	if tok == nil {
		return nil
	}
	if tok.Type == structs.ACLManagementToken {
		return &identity{token: tok, acl: acl.Management}
	}
	var policies []*acl.Policy
	for _, name := range tok.Policies {
		// A deleted policy grants nothing; the token keeps its name, so
		// re-creating the policy gives it back.
		if p := snap.ACLPolicy(nil, name); p != nil {
			policies = append(policies, r.parse(p))
		}
	}
	return &identity{token: tok, acl: acl.Compile(policies...)}
}

// parse parses a stored policy. Policies are parsed before they are
// stored, so this fails only for one written by a build whose language
// was larger: it then grants nothing, and says so.
func (r *aclResolver) parse(p *structs.ACLPolicy) *acl.Policy {
	pol, err := acl.Parse(p.Rules)
	if err != nil {
		r.logger.Error("stored ACL policy does not parse; it grants nothing", "policy", p.Name, "error", err)
		return nil
	}
	return pol
}
