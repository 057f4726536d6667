package structs

import (
	"fmt"
	"regexp"
)

// ACLPolicy is a named policy document (package acl parses Rules). The
// policy named AnonymousPolicy, when it exists, is what callers without a
// token may do.
type ACLPolicy struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Rules       string `json:"rules"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// AnonymousPolicy names the policy that applies to requests without a
// token (Nomad's anonymous token's policies).
const AnonymousPolicy = "anonymous"

// Token types.
const (
	// ACLClientToken is allowed what its policies allow.
	ACLClientToken = "client"
	// ACLManagementToken is allowed everything.
	ACLManagementToken = "management"
)

// ACLToken is a token: a public accessor ID that names it in listings and
// logs, and a secret the caller presents. Only the secret's hash is stored
// (SecretHash); SecretID is set only in the answer that creates the token,
// which is the one time the secret is shown.
type ACLToken struct {
	AccessorID string   `json:"accessor_id"`
	SecretID   string   `json:"secret_id,omitempty"`
	SecretHash string   `json:"secret_hash,omitempty"`
	Name       string   `json:"name,omitempty"`
	Type       string   `json:"type"`
	Policies   []string `json:"policies,omitempty"`
	CreateTime int64    `json:"create_time"`
	// Bootstrap marks the token acl bootstrap made.
	Bootstrap   bool   `json:"bootstrap,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Public returns a copy without the secret's hash, for answers.
func (t *ACLToken) Public() *ACLToken {
	c := *t
	c.SecretHash = ""
	c.Policies = append([]string(nil), t.Policies...)
	return &c
}

// Limits on ACL objects: all come from clients.
const (
	MaxPolicyNameLen    = 128
	MaxPoliciesPerToken = 64
	MaxTokenNameLen     = 256
	MaxDescriptionLen   = 1024
)

var policyNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)

// ValidatePolicyName checks a policy's name.
func ValidatePolicyName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name: is required")
	case len(name) > MaxPolicyNameLen:
		return fmt.Errorf("name: must be at most %d characters", MaxPolicyNameLen)
	case !policyNameRE.MatchString(name):
		return fmt.Errorf("name: must start with a letter or digit and contain only letters, digits, '_' and '-' (got %q)", name)
	}
	return nil
}

// ACLBootstrapRequest stores the first management token. The FSM refuses
// it once a token was bootstrapped, unless ResetIndex names the index of
// that bootstrap (the operator's reset, docs/operations.md).
type ACLBootstrapRequest struct {
	Token      *ACLToken `json:"token"`
	ResetIndex uint64    `json:"reset_index,omitempty"`
}

// ACLPolicyUpsertRequest creates or replaces policies.
type ACLPolicyUpsertRequest struct {
	Policies []*ACLPolicy `json:"policies"`
}

// ACLPolicyDeleteRequest deletes policies by name.
type ACLPolicyDeleteRequest struct {
	Names []string `json:"names"`
}

// ACLTokenUpsertRequest creates or replaces tokens (with SecretHash set,
// SecretID empty).
type ACLTokenUpsertRequest struct {
	Tokens []*ACLToken `json:"tokens"`
}

// ACLTokenDeleteRequest deletes tokens by accessor ID.
type ACLTokenDeleteRequest struct {
	AccessorIDs []string `json:"accessor_ids"`
}
