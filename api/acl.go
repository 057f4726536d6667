package api

import (
	"context"
	"net/url"

	"github.com/gantry-project/gantry/internal/structs"
)

type (
	// ACLPolicy is a named policy document (docs/operations.md, "Access
	// control").
	ACLPolicy = structs.ACLPolicy
	// ACLToken is a token. SecretID is set only in the answer that
	// creates it (bootstrap, create); SecretHash never leaves a server.
	ACLToken = structs.ACLToken
	// Namespace groups jobs; Quota caps what they hold.
	Namespace = structs.Namespace
	Quota     = structs.Quota
)

// Token types.
const (
	ACLClientToken     = structs.ACLClientToken
	ACLManagementToken = structs.ACLManagementToken
)

// ACLTokenCreateRequest is the body of POST /v1/acl/token.
type ACLTokenCreateRequest struct {
	Name string `json:"name,omitempty"`
	// Type is "client" (the default) or "management".
	Type string `json:"type,omitempty"`
	// Policies name the policies of a client token (at least one).
	Policies []string `json:"policies,omitempty"`
}

// NamespaceStatus is a row of GET /v1/namespaces: the namespace, what its
// live allocations hold and how many jobs it has.
type NamespaceStatus struct {
	Namespace
	Usage Resources `json:"usage"`
	Jobs  int       `json:"jobs"`
}

// ACLBootstrap makes the first management token (POST /v1/acl/bootstrap).
// It works once per cluster (docs/operations.md explains the reset).
func (c *Client) ACLBootstrap(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	_, err := c.do(ctx, "POST", "/v1/acl/bootstrap", nil, nil, &out)
	return &out, err
}

// ACLPolicies lists the policies (GET /v1/acl/policies).
func (c *Client) ACLPolicies(ctx context.Context) ([]*ACLPolicy, error) {
	var out []*ACLPolicy
	_, err := c.do(ctx, "GET", "/v1/acl/policies", nil, nil, &out)
	return out, err
}

// ACLPolicy reads one policy (GET /v1/acl/policy/{name}).
func (c *Client) ACLPolicy(ctx context.Context, name string) (*ACLPolicy, error) {
	var out ACLPolicy
	_, err := c.do(ctx, "GET", "/v1/acl/policy/"+url.PathEscape(name), nil, nil, &out)
	return &out, err
}

// ApplyACLPolicy creates or replaces a policy (PUT /v1/acl/policy/{name}).
func (c *Client) ApplyACLPolicy(ctx context.Context, p *ACLPolicy) (*IndexResponse, error) {
	var out IndexResponse
	_, err := c.do(ctx, "PUT", "/v1/acl/policy/"+url.PathEscape(p.Name), nil, p, &out)
	return &out, err
}

// DeleteACLPolicy deletes a policy (DELETE /v1/acl/policy/{name}).
func (c *Client) DeleteACLPolicy(ctx context.Context, name string) (*IndexResponse, error) {
	var out IndexResponse
	_, err := c.do(ctx, "DELETE", "/v1/acl/policy/"+url.PathEscape(name), nil, nil, &out)
	return &out, err
}

// ACLTokens lists the tokens, without secrets (GET /v1/acl/tokens).
func (c *Client) ACLTokens(ctx context.Context) ([]*ACLToken, error) {
	var out []*ACLToken
	_, err := c.do(ctx, "GET", "/v1/acl/tokens", nil, nil, &out)
	return out, err
}

// CreateACLToken makes a token (POST /v1/acl/token); the answer holds its
// secret, shown this once.
func (c *Client) CreateACLToken(ctx context.Context, req *ACLTokenCreateRequest) (*ACLToken, error) {
	var out ACLToken
	_, err := c.do(ctx, "POST", "/v1/acl/token", nil, req, &out)
	return &out, err
}

// ACLToken reads a token by accessor ID (GET /v1/acl/token/{accessor}).
func (c *Client) ACLToken(ctx context.Context, accessorID string) (*ACLToken, error) {
	var out ACLToken
	_, err := c.do(ctx, "GET", "/v1/acl/token/"+url.PathEscape(accessorID), nil, nil, &out)
	return &out, err
}

// ACLTokenSelf reads the token the client presents
// (GET /v1/acl/token/self).
func (c *Client) ACLTokenSelf(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	_, err := c.do(ctx, "GET", "/v1/acl/token/self", nil, nil, &out)
	return &out, err
}

// DeleteACLToken deletes a token (DELETE /v1/acl/token/{accessor}).
func (c *Client) DeleteACLToken(ctx context.Context, accessorID string) (*IndexResponse, error) {
	var out IndexResponse
	_, err := c.do(ctx, "DELETE", "/v1/acl/token/"+url.PathEscape(accessorID), nil, nil, &out)
	return &out, err
}

// Namespaces lists the namespaces the caller may see, with their usage
// (GET /v1/namespaces).
func (c *Client) Namespaces(ctx context.Context, q *QueryOptions) ([]*NamespaceStatus, *QueryMeta, error) {
	var out []*NamespaceStatus
	meta, err := c.do(ctx, "GET", "/v1/namespaces", q.values(), nil, &out)
	return out, meta, err
}

// ApplyNamespace creates or replaces a namespace and its quota
// (PUT /v1/namespace/{name}).
func (c *Client) ApplyNamespace(ctx context.Context, ns *Namespace) (*IndexResponse, error) {
	var out IndexResponse
	_, err := c.do(ctx, "PUT", "/v1/namespace/"+url.PathEscape(ns.Name), nil, ns, &out)
	return &out, err
}

// DeleteNamespace deletes a namespace that holds no jobs
// (DELETE /v1/namespace/{name}).
func (c *Client) DeleteNamespace(ctx context.Context, name string) (*IndexResponse, error) {
	var out IndexResponse
	_, err := c.do(ctx, "DELETE", "/v1/namespace/"+url.PathEscape(name), nil, nil, &out)
	return &out, err
}
