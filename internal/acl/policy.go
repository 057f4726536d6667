// Package acl is gantry's access control: the policy language (Parse), the
// compiled permissions of a token (ACL) and the secrets tokens carry
// (NewSecret, HashSecret). It imports nothing of gantry's: the server
// stores policies and tokens through Raft and asks an ACL what a request
// may do (docs/operations.md, "Access control").
//
// A policy is a small HCL-like document, the shape of Nomad's ACL
// policies, so rules people already write read the same here:
//
//	# team A runs its own jobs and reads the rest
//	namespace "team-a" {
//	  policy = "write"
//	}
//	namespace "*" {
//	  policy       = "read"
//	  capabilities = ["logs"]
//	}
//	node {
//	  policy = "read"
//	}
//	operator {
//	  policy = "read"
//	}
//
// The grammar (Parse) is blocks of attributes, no nesting beyond that:
//
//	policy    = { block }
//	block     = ident [ string ] "{" { attribute } "}"
//	attribute = ident "=" ( string | "[" [ string { "," string } [ "," ] ] "]" )
//
// with comments from "#" or "//" to the end of the line and between "/*"
// and "*/". Strings are double-quoted, with the escapes \" \\ \n and \t.
package acl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Capability is one thing a token may do in a namespace. Capabilities are
// bits so a token's set in a namespace is one byte and a check one AND.
type Capability uint8

const (
	// CapRead lists and reads jobs, their allocations and placement
	// failures.
	CapRead Capability = 1 << iota
	// CapSubmit registers, updates, stops and purges jobs.
	CapSubmit
	// CapScale changes a job's count.
	CapScale
	// CapLogs reads task logs.
	CapLogs
	// CapDeny refuses everything in the namespace, whatever else grants
	// it.
	CapDeny
	// CapAllocExec runs commands in allocations' tasks (`alloc exec`):
	// its own capability, as Nomad's alloc-exec, since it reaches
	// inside a task where submit only describes one.
	CapAllocExec
	// CapAllocLifecycle restarts, signals and stops allocations.
	CapAllocLifecycle

	capAll = CapRead | CapSubmit | CapScale | CapLogs | CapAllocExec | CapAllocLifecycle
)

// capNames are the capabilities as policies name them, in bit order.
var capNames = []struct {
	c    Capability
	name string
}{
	{CapRead, "read"}, {CapSubmit, "submit"}, {CapScale, "scale"}, {CapLogs, "logs"}, {CapDeny, "deny"},
	{CapAllocExec, "alloc-exec"}, {CapAllocLifecycle, "alloc-lifecycle"},
}

// ParseCapability returns the capability a policy names.
func ParseCapability(s string) (Capability, bool) {
	for _, n := range capNames {
		if n.name == s {
			return n.c, true
		}
	}
	return 0, false
}

// String names the capabilities in c, comma-separated ("read,logs").
func (c Capability) String() string {
	var parts []string
	for _, n := range capNames {
		if c&n.c != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// namespacePolicies are the shorthands of a namespace block's policy
// attribute, as in Nomad.
var namespacePolicies = map[string]Capability{
	"read":  CapRead,
	"scale": CapRead | CapScale,
	"write": capAll,
	"deny":  CapDeny,
}

// Level is what a policy grants on the node or operator APIs.
type Level uint8

const (
	// LevelNone: the policy says nothing (another policy may grant).
	LevelNone Level = iota
	// LevelRead reads (node list and status; Raft configuration and
	// scheduler figures).
	LevelRead
	// LevelWrite changes (agents' registration, heartbeats and reports,
	// drains; Raft membership, snapshots, namespaces).
	LevelWrite
	// LevelDeny refuses, whatever another policy grants.
	LevelDeny
)

var levelNames = map[string]Level{"read": LevelRead, "write": LevelWrite, "deny": LevelDeny}

func (l Level) String() string {
	switch l {
	case LevelRead:
		return "read"
	case LevelWrite:
		return "write"
	case LevelDeny:
		return "deny"
	}
	return "none"
}

// merge combines two policies' levels: deny wins, then the higher.
func (l Level) merge(o Level) Level {
	if l == LevelDeny || o == LevelDeny {
		return LevelDeny
	}
	return max(l, o)
}

// allows reports whether l grants want (LevelRead or LevelWrite); write
// includes read.
func (l Level) allows(want Level) bool {
	return l != LevelDeny && l >= want
}

// NamespaceRule is one namespace block.
type NamespaceRule struct {
	// Pattern is a namespace name, "*" for every namespace, or a prefix
	// followed by "*" ("team-*"). The most specific pattern matching a
	// namespace decides (ACL.Namespace).
	Pattern string
	// Policy is the shorthand the block named ("" if none).
	Policy string
	// Capabilities are the block's capabilities, the policy's included.
	Capabilities Capability
}

// Policy is a parsed policy document.
type Policy struct {
	// Namespaces in document order; no two share a pattern.
	Namespaces []NamespaceRule
	Node       Level
	Operator   Level
}

// Limits of a policy document: every document comes from a client.
const (
	// MaxPolicyBytes bounds a document.
	MaxPolicyBytes = 64 << 10
	// MaxNamespaceRules bounds the namespace blocks of a document.
	MaxNamespaceRules = 256
	// MaxPatternLen bounds a namespace pattern.
	MaxPatternLen = 128
)

// ValidPattern reports why a namespace pattern is not one ("" if it is):
// letters, digits, '-' and '_', optionally ending in '*'.
func ValidPattern(p string) string {
	name := strings.TrimSuffix(p, "*")
	switch {
	case p == "":
		return "is empty"
	case len(p) > MaxPatternLen:
		return fmt.Sprintf("is longer than %d characters", MaxPatternLen)
	case strings.ContainsRune(name, '*'):
		return "may hold '*' only at its end"
	}
	for _, r := range name {
		if !patternRune(r) {
			return fmt.Sprintf("may hold only letters, digits, '-', '_' and a final '*' (found %q)", r)
		}
	}
	return ""
}

// patternRune reports whether r may appear in a namespace pattern before
// its final '*'.
func patternRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// Format writes p in the canonical form Parse reads back as an equal
// policy (fuzz_test.go checks the round trip).
func (p *Policy) Format() string {
	var b strings.Builder
	for _, ns := range p.Namespaces {
		fmt.Fprintf(&b, "namespace %s {\n", strconv.Quote(ns.Pattern))
		extra := ns.Capabilities
		if ns.Policy != "" {
			fmt.Fprintf(&b, "  policy = %s\n", strconv.Quote(ns.Policy))
			extra &^= namespacePolicies[ns.Policy]
		}
		if extra != 0 || ns.Policy == "" {
			var names []string
			for _, n := range capNames {
				if extra&n.c != 0 {
					names = append(names, strconv.Quote(n.name))
				}
			}
			fmt.Fprintf(&b, "  capabilities = [%s]\n", strings.Join(names, ", "))
		}
		b.WriteString("}\n")
	}
	for _, blk := range []struct {
		name string
		l    Level
	}{{"node", p.Node}, {"operator", p.Operator}} {
		if blk.l != LevelNone {
			fmt.Fprintf(&b, "%s {\n  policy = %s\n}\n", blk.name, strconv.Quote(blk.l.String()))
		}
	}
	return b.String()
}

// Equal reports whether two policies grant the same in the same words.
func (p *Policy) Equal(o *Policy) bool {
	return p.Node == o.Node && p.Operator == o.Operator && slices.Equal(p.Namespaces, o.Namespaces)
}
