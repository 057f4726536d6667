package acl

import (
	"slices"
	"strings"
)

// ACL is what one token may do: its policies compiled into lookups. It is
// immutable once built, so the server caches one per token and shares it
// between requests (every check is a map lookup and a bit test).
type ACL struct {
	management bool
	// exact holds the rules for namespace names, prefixes the rules for
	// patterns ending in '*' ("" for "*"), longest first.
	exact    map[string]Capability
	prefixes []prefixRule
	node     Level
	operator Level
}

type prefixRule struct {
	prefix string
	caps   Capability
}

// Management is the ACL of a management token: everything is allowed.
var Management = &ACL{management: true}

// DenyAll is the ACL of a caller without permissions.
var DenyAll = &ACL{}

// Compile merges policies into one ACL. Where several policies name the
// same namespace pattern their capabilities add up, and a deny anywhere
// wins; the node and operator levels take the highest, and deny wins.
func Compile(policies ...*Policy) *ACL {
	a := &ACL{}
	byPattern := map[string]Capability{}
	for _, p := range policies {
		if p == nil {
			continue
		}
		for _, r := range p.Namespaces {
			byPattern[r.Pattern] |= r.Capabilities
		}
		a.node = a.node.merge(p.Node)
		a.operator = a.operator.merge(p.Operator)
	}
	for pat, caps := range byPattern {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			a.prefixes = append(a.prefixes, prefixRule{prefix: prefix, caps: caps})
			continue
		}
		if a.exact == nil {
			a.exact = map[string]Capability{}
		}
		a.exact[pat] = caps
	}
	// The longest prefix is the most specific; equal lengths cannot
	// both match one name unless equal, and patterns are unique.
	slices.SortFunc(a.prefixes, func(x, y prefixRule) int {
		if len(x.prefix) != len(y.prefix) {
			return len(y.prefix) - len(x.prefix)
		}
		return strings.Compare(x.prefix, y.prefix)
	})
	return a
}

// IsManagement reports whether a is a management token's.
func (a *ACL) IsManagement() bool { return a.management }

// Namespace returns the capabilities a grants in a namespace: those of
// the rule for its exact name, else of the longest matching prefix
// pattern ("*" last), else none. A rule with deny grants nothing.
func (a *ACL) Namespace(ns string) Capability {
	if a.management {
		return capAll
	}
	caps, ok := a.exact[ns]
	if !ok {
		for _, r := range a.prefixes {
			if strings.HasPrefix(ns, r.prefix) {
				caps = r.caps
				break
			}
		}
	}
	if caps&CapDeny != 0 {
		return 0
	}
	return caps
}

// AllowNamespace reports whether a grants every capability in want in
// the namespace.
func (a *ACL) AllowNamespace(ns string, want Capability) bool {
	return a.Namespace(ns)&want == want
}

// AllowAnyNamespace reports whether some namespace grants want: the check
// of listings across namespaces, which then keep only what
// AllowNamespace allows.
func (a *ACL) AllowAnyNamespace(want Capability) bool {
	if a.management {
		return true
	}
	for _, caps := range a.exact {
		if caps&CapDeny == 0 && caps&want == want {
			return true
		}
	}
	for _, r := range a.prefixes {
		if r.caps&CapDeny == 0 && r.caps&want == want {
			return true
		}
	}
	return false
}

// AllowNode reports whether a grants want (LevelRead or LevelWrite) on
// the node API.
func (a *ACL) AllowNode(want Level) bool { return a.management || a.node.allows(want) }

// AllowOperator reports whether a grants want (LevelRead or LevelWrite) on
// the operator API.
func (a *ACL) AllowOperator(want Level) bool { return a.management || a.operator.allows(want) }
