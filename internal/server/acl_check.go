package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/structs"
)

// Access control of the API (docs/api.md, "Authentication"):
//
// Every row of the route table (Server.endpoints) declares its aclRule;
// the handler wrapper checks it where the request is answered (on the
// leader for forwarded requests, which carry the caller's token; locally
// for local routes and stale reads), before the handler runs. With ACLs
// off (the default, and `gantry dev`) every request is allowed.
//
// A request presents a token's secret in X-Gantry-Token or as
// "Authorization: Bearer <secret>". Without one it acts as the anonymous
// identity: what the policy named "anonymous" grants, or nothing. The
// answer to a refused request is 401 when a token would help (none was
// given, or the one given is unknown) and 403 when the token given lacks
// the capability; the JSON error says which capability the route needs.
//
// Mutual TLS adds the verified certificate's role as a second source of
// identity: peerRole, when set, returns the role of the request's original
// caller (a forwarding server vouches for it, as the TLS layer arranges),
// and the "server" role is allowed the operator routes (servers joining
// each other) without a token. Without TLS, servers present
// Config.ACL.Token on their calls to each other.

// aclKind says what a route's rule checks.
type aclKind uint8

const (
	// aclUnset is a route without a rule. It is refused, whoever calls
	// (fail closed), and TestRouteACLTable fails on it.
	aclUnset aclKind = iota
	// aclPublic routes need nothing, with ACLs on too.
	aclPublic
	// aclAnyToken routes need a known token (any).
	aclAnyToken
	// aclNamespace routes need a capability in the request's namespace
	// (?namespace=, default "default"); "*" asks for a listing across
	// every namespace, allowed if some namespace grants it (the handler
	// keeps what each namespace allows).
	aclNamespace
	// aclAnyNamespace routes need the capability in some namespace, or
	// operator read (namespace listings).
	aclAnyNamespace
	// aclNode routes need node read or write.
	aclNode
	// aclOperator routes need operator read or write.
	aclOperator
	// aclManagement routes need a management token.
	aclManagement
)

// aclRule is a route's access rule: a kind and what it asks for.
type aclRule struct {
	kind  aclKind
	cap   acl.Capability // aclNamespace, aclAnyNamespace
	level acl.Level      // aclNode, aclOperator
}

func public() aclRule                       { return aclRule{kind: aclPublic} }
func anyToken() aclRule                     { return aclRule{kind: aclAnyToken} }
func nsCap(c acl.Capability) aclRule        { return aclRule{kind: aclNamespace, cap: c} }
func anyNamespace(c acl.Capability) aclRule { return aclRule{kind: aclAnyNamespace, cap: c} }
func nodeRule(l acl.Level) aclRule          { return aclRule{kind: aclNode, level: l} }
func operatorRule(l acl.Level) aclRule      { return aclRule{kind: aclOperator, level: l} }
func management() aclRule                   { return aclRule{kind: aclManagement} }

// String says what the rule asks for, as errors and docs word it.
func (r aclRule) String() string {
	switch r.kind {
	case aclPublic:
		return "nothing (public)"
	case aclAnyToken:
		return "any token"
	case aclNamespace:
		return "namespace " + r.cap.String()
	case aclAnyNamespace:
		return r.cap.String() + " in some namespace, or operator read"
	case aclNode:
		return "node " + r.level.String()
	case aclOperator:
		return "operator " + r.level.String()
	case aclManagement:
		return "a management token"
	}
	return "a rule this route does not declare"
}

// TokenHeader is where a request presents its token's secret.
const TokenHeader = api.TokenHeader

// requestSecret returns the secret a request presents ("" for none).
func requestSecret(r *http.Request) string {
	if s := r.Header.Get(TokenHeader); s != "" {
		return strings.TrimSpace(s)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if s, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// requestNamespace returns the request's namespace (?namespace=, default
// "default"; "*" for every namespace), or a 400.
func requestNamespace(r *http.Request) (string, error) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		return structs.DefaultNamespace, nil
	}
	if ns == structs.AllNamespaces {
		return ns, nil
	}
	if err := structs.ValidateNamespaceName(ns); err != nil {
		return "", badRequest("namespace: %v", err)
	}
	return ns, nil
}

type identityKey struct{}

// withIdentity returns r carrying the identity its handler may need to
// filter listings or check objects found by ID.
func withIdentity(r *http.Request, id *identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
}

// aclOf returns what the request may do: everything with ACLs off, else
// the identity authorize attached.
func (s *Server) aclOf(r *http.Request) *acl.ACL {
	if !s.cfg.ACL.Enabled {
		return acl.Management
	}
	if id, ok := r.Context().Value(identityKey{}).(*identity); ok {
		return id.acl
	}
	return acl.DenyAll
}

// unauthorized is a refusal a token would cure (401).
func unauthorized(format string, args ...any) error {
	return &httpError{code: http.StatusUnauthorized, msg: fmt.Sprintf(format, args...)}
}

// forbidden is a refusal of a known token (403).
func forbidden(format string, args ...any) error {
	return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf(format, args...)}
}

// authorize checks rule for r. It returns r, with the caller's identity
// attached for the routes whose handlers filter by namespace, or the
// refusal.
func (s *Server) authorize(rule aclRule, r *http.Request) (*http.Request, error) {
	if !s.cfg.ACL.Enabled || rule.kind == aclPublic {
		return r, nil
	}
	if rule.kind == aclUnset {
		return nil, forbidden("permission denied: %s %s has no access rule (a server bug: every route declares one)", r.Method, r.URL.Path)
	}
	if rule.kind == aclOperator && s.peerRole != nil && s.peerRole(r) == "server" {
		return r, nil
	}
	secret := requestSecret(r)
	id := s.acls.resolve(secret)
	if id == nil {
		return nil, unauthorized("ACL token not found: the token given is unknown or was deleted")
	}
	ns := ""
	allowed := false
	switch rule.kind {
	case aclAnyToken:
		allowed = id.token != nil
	case aclNamespace:
		var err error
		if ns, err = requestNamespace(r); err != nil {
			return nil, err
		}
		if ns == structs.AllNamespaces {
			allowed = id.acl.AllowAnyNamespace(rule.cap)
		} else {
			allowed = id.acl.AllowNamespace(ns, rule.cap)
		}
	case aclAnyNamespace:
		allowed = id.acl.AllowAnyNamespace(rule.cap) || id.acl.AllowOperator(acl.LevelRead)
	case aclNode:
		allowed = id.acl.AllowNode(rule.level)
	case aclOperator:
		allowed = id.acl.AllowOperator(rule.level)
	case aclManagement:
		allowed = id.acl.IsManagement()
	}
	if !allowed {
		what := rule.String()
		if ns != "" {
			what = fmt.Sprintf("namespace %s: %s", ns, rule.cap)
		}
		if id.token == nil {
			return nil, unauthorized("permission denied: %s %s needs a token with %s; none was given "+
				"(send it in the %s header or as Authorization: Bearer; the CLI reads GANTRY_TOKEN)", r.Method, r.URL.Path, what, TokenHeader)
		}
		return nil, forbidden("permission denied: token %s lacks %s, which %s %s needs", describeToken(id.token), what, r.Method, r.URL.Path)
	}
	switch rule.kind {
	case aclNamespace, aclAnyNamespace, aclAnyToken:
		return withIdentity(r, id), nil
	}
	return r, nil
}

// describeToken names a token in errors: its name and accessor ID, never
// its secret.
func describeToken(t *structs.ACLToken) string {
	if t.Name != "" {
		return fmt.Sprintf("%q (accessor %s)", t.Name, t.AccessorID)
	}
	return "with accessor " + t.AccessorID
}

// identityOf returns the identity authorize attached (nil with ACLs off
// or on routes that attach none).
func identityOf(r *http.Request) *identity {
	id, _ := r.Context().Value(identityKey{}).(*identity)
	return id
}
