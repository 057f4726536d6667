package api

import (
	"context"
	"net/url"
	"strconv"

	"github.com/gantry-project/gantry/internal/structs"
)

// Service discovery types (internal/structs/health.go, catalog.go).
type (
	Service         = structs.Service
	Check           = structs.Check
	CheckRestart    = structs.CheckRestart
	AllocHealth     = structs.AllocHealth
	CheckStatus     = structs.CheckStatus
	ServiceInstance = structs.ServiceInstance
	ServiceSummary  = structs.ServiceSummary
)

// ServiceQuery narrows a service's instances.
type ServiceQuery struct {
	// All includes instances that are not healthy (default: healthy only).
	All bool
	// Tag keeps instances carrying it.
	Tag string
}

func (sq *ServiceQuery) apply(v url.Values) url.Values {
	if sq == nil {
		return v
	}
	if sq.All {
		v.Set("healthy", strconv.FormatBool(false))
	}
	if sq.Tag != "" {
		v.Set("tag", sq.Tag)
	}
	return v
}

// Services lists the services with their instance counts (GET /v1/services).
func (c *Client) Services(ctx context.Context, q *QueryOptions) ([]*ServiceSummary, *QueryMeta, error) {
	var out []*ServiceSummary
	meta, err := c.do(ctx, "GET", "/v1/services", c.nsValues(q), nil, &out)
	return out, meta, err
}

// Service lists a service's instances (GET /v1/service/{name}).
func (c *Client) Service(ctx context.Context, name string, sq *ServiceQuery, q *QueryOptions) ([]ServiceInstance, *QueryMeta, error) {
	var out []ServiceInstance
	meta, err := c.do(ctx, "GET", "/v1/service/"+url.PathEscape(name), sq.apply(c.nsValues(q)), nil, &out)
	return out, meta, err
}

// Catalog lists the healthy instances of every service in every
// namespace (GET /v1/catalog; node read), as agents' DNS caches follow it.
func (c *Client) Catalog(ctx context.Context, q *QueryOptions) ([]ServiceInstance, *QueryMeta, error) {
	var out []ServiceInstance
	meta, err := c.do(ctx, "GET", "/v1/catalog", q.values(), nil, &out)
	return out, meta, err
}
