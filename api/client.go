package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

// IndexHeader carries the state index of a response; pass it back as
// QueryOptions.WaitIndex to block until something newer exists.
const IndexHeader = "X-Gantry-Index"

// FullHeader says whether an answer of NodeAllocationChanges is the node's
// full allocation list ("true") or only what changed ("false").
const FullHeader = "X-Gantry-Full"

// TokenHeader carries a request's ACL token secret (also accepted as
// "Authorization: Bearer <secret>").
const TokenHeader = "X-Gantry-Token"

// DefaultAddress is where the CLI looks for a server when neither
// --address nor GANTRY_ADDR is set.
const DefaultAddress = "http://127.0.0.1:4646"

// Config configures a Client.
type Config struct {
	// Address is the server's base URL, e.g. http://127.0.0.1:4646.
	// Several comma-separated addresses are tried in order on connection
	// errors (agents use this to fail over between servers).
	Address string
	// HTTPClient is used for requests; nil means a client without a global
	// timeout (blocking queries and log streams are long).
	HTTPClient *http.Client
	// NodeWireJSON makes the node endpoints (the watch and batched
	// reports) speak JSON only, as clients before the binary frames did;
	// by default they ask for binary and fall back to what the server
	// speaks.
	NodeWireJSON bool
	// TLS, when set, makes addresses without a scheme https and, unless
	// HTTPClient is set (it is then used as it is), builds the client's
	// TLS from these files. Servers with TLS on refuse plain HTTP and
	// callers without a certificate of their CA.
	TLS *TLSConfig
	// Token is the ACL token secret sent with every request (TokenHeader);
	// "" sends none (anonymous).
	Token string
	// Namespace is the namespace of job and allocation calls that name
	// none ("" = the server's default namespace; "*" lists every
	// namespace the token may read).
	Namespace string
}

// TLSConfig is a client's TLS: PEM files as `gantry tls` makes them.
type TLSConfig struct {
	// CACert is the CA bundle the server's certificate must chain to.
	CACert string
	// ClientCert and ClientKey are the client's certificate and key
	// (global-client-gantry.pem); servers require one.
	ClientCert string
	ClientKey  string
	// ServerName is the name the server's certificate must carry
	// ("" = DefaultTLSServerName, the servers of region global).
	ServerName string
}

// DefaultTLSServerName is the name a client expects in a server's
// certificate unless told otherwise: the servers of region global.
const DefaultTLSServerName = "server.global.gantry"

// Environment variables of DefaultConfig, as Nomad's NOMAD_ADDR,
// NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY, NOMAD_TLS_SERVER_NAME.
const (
	EnvAddress       = "GANTRY_ADDR"
	EnvCACert        = "GANTRY_CACERT"
	EnvClientCert    = "GANTRY_CLIENT_CERT"
	EnvClientKey     = "GANTRY_CLIENT_KEY"
	EnvTLSServerName = "GANTRY_TLS_SERVER_NAME"
	EnvToken         = "GANTRY_TOKEN"
	EnvNamespace     = "GANTRY_NAMESPACE"
)

// DefaultConfig reads GANTRY_ADDR, GANTRY_TOKEN, GANTRY_NAMESPACE and,
// when any is set, GANTRY_CACERT, GANTRY_CLIENT_CERT, GANTRY_CLIENT_KEY
// and GANTRY_TLS_SERVER_NAME.
func DefaultConfig() Config {
	addr := os.Getenv(EnvAddress)
	tc := TLSFromEnv()
	if addr == "" {
		addr = DefaultAddress
		if tc != nil {
			addr = DefaultTLSAddress
		}
	}
	return Config{Address: addr, TLS: tc, Token: os.Getenv(EnvToken), Namespace: os.Getenv(EnvNamespace)}
}

// DefaultTLSAddress is DefaultAddress over TLS.
const DefaultTLSAddress = "https://127.0.0.1:4646"

// TLSFromEnv returns the TLS configuration of the environment variables,
// or nil when none is set.
func TLSFromEnv() *TLSConfig {
	tc := &TLSConfig{
		CACert:     os.Getenv(EnvCACert),
		ClientCert: os.Getenv(EnvClientCert),
		ClientKey:  os.Getenv(EnvClientKey),
		ServerName: os.Getenv(EnvTLSServerName),
	}
	if *tc == (TLSConfig{}) {
		return nil
	}
	return tc
}

// tlsTransport builds an HTTP transport from tc's files.
func tlsTransport(tc *TLSConfig) (*http.Transport, error) {
	if tc.CACert == "" {
		return nil, errors.New("tls: a CA certificate is required (GANTRY_CACERT, --ca-file)")
	}
	certs, err := tlsutil.Load(tlsutil.Config{
		CAFile: tc.CACert, CertFile: tc.ClientCert, KeyFile: tc.ClientKey,
		// The region only names roles, which a client does not check
		// of itself; ServerName below is what it checks of the server.
		Region: tlsutil.DefaultRegion,
	}, tlsutil.RoleNone)
	if err != nil {
		return nil, err
	}
	name := tc.ServerName
	if name == "" {
		name = DefaultTLSServerName
	}
	return &http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		TLSClientConfig: certs.ClientConfigName(name),
	}, nil
}

// Client talks to a gantry server.
type Client struct {
	addrs        []string
	http         *http.Client
	nodeWireJSON bool
	token        string
	namespace    string
	// reportWire is what batched reports are sent as: 0 not known yet
	// (binary is tried), reportBinary or reportJSON (the server refused
	// binary). Shared by the copies WithNamespace makes.
	reportWire *atomic.Int32
}

// NewClient validates the config and returns a client.
func NewClient(c Config) (*Client, error) {
	scheme := "http://"
	if c.TLS != nil {
		scheme = "https://"
	}
	var addrs []string
	for _, a := range strings.Split(c.Address, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = scheme + a
		}
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("address %q: not a valid URL", a)
		}
		addrs = append(addrs, strings.TrimRight(a, "/"))
	}
	if len(addrs) == 0 {
		return nil, errors.New("address: at least one server address is required")
	}
	hc := c.HTTPClient
	switch {
	case hc != nil:
	case c.TLS != nil:
		t, err := tlsTransport(c.TLS)
		if err != nil {
			return nil, err
		}
		hc = &http.Client{Transport: t}
	default:
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		return nil, errors.New("token: must not hold line breaks")
	}
	return &Client{addrs: addrs, http: hc, nodeWireJSON: c.NodeWireJSON,
		token: strings.TrimSpace(c.Token), namespace: c.Namespace, reportWire: new(atomic.Int32)}, nil
}

// WithNamespace returns a client for the same servers and token whose
// job and allocation calls default to namespace ns.
func (c *Client) WithNamespace(ns string) *Client {
	cc := *c
	cc.namespace = ns
	return &cc
}

// Namespace returns the client's default namespace ("" = the server's).
func (c *Client) Namespace() string { return c.namespace }

// Addresses returns the configured server addresses.
func (c *Client) Addresses() []string { return append([]string(nil), c.addrs...) }

// APIError is a non-2xx answer from the server.
type APIError struct {
	StatusCode int
	Message    string
	Fields     []FieldError
}

func (e *APIError) Error() string {
	if len(e.Fields) > 0 {
		parts := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			parts[i] = f.Field + ": " + f.Rule
		}
		return fmt.Sprintf("%s (%d):\n  %s", e.Message, e.StatusCode, strings.Join(parts, "\n  "))
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// QueryOptions control reads.
type QueryOptions struct {
	// WaitIndex blocks the request until the state index exceeds it or
	// WaitTime passes (a blocking query).
	WaitIndex uint64
	WaitTime  time.Duration
	// Stale allows any server to answer from its local state, which may lag
	// the leader (reads are served locally by default on one server).
	Stale bool
	// Namespace overrides the client's namespace for job and allocation
	// reads ("*": every namespace the token may read, for listings).
	Namespace string
}

// QueryMeta describes a read's result.
type QueryMeta struct {
	LastIndex uint64
	// Full is false only for NodeAllocationChanges answers that list just
	// the changed allocations.
	Full bool
}

func (q *QueryOptions) values() url.Values {
	v := url.Values{}
	if q == nil {
		return v
	}
	if q.WaitIndex > 0 {
		v.Set("index", strconv.FormatUint(q.WaitIndex, 10))
	}
	if q.WaitTime > 0 {
		v.Set("wait", q.WaitTime.String())
	}
	if q.Stale {
		v.Set("stale", "true")
	}
	return v
}

// nsValues is q's query with the namespace of a namespaced call: q's,
// else the client's (none: the server's default).
func (c *Client) nsValues(q *QueryOptions) url.Values {
	v := q.values()
	ns := c.namespace
	if q != nil && q.Namespace != "" {
		ns = q.Namespace
	}
	if ns != "" {
		v.Set("namespace", ns)
	}
	return v
}

// nsQuery is the query of a namespaced write: the given namespace, else
// the client's.
func (c *Client) nsQuery(ns string) url.Values {
	if ns == "" {
		ns = c.namespace
	}
	if ns == "" {
		return nil
	}
	return url.Values{"namespace": {ns}}
}

// do sends a request and decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (*QueryMeta, error) {
	resp, err := c.raw(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	meta := &QueryMeta{}
	if idx := resp.Header.Get(IndexHeader); idx != "" {
		meta.LastIndex, _ = strconv.ParseUint(idx, 10, 64)
	}
	meta.Full = resp.Header.Get(FullHeader) != "false"
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return nil, fmt.Errorf("%s %s: decoding response: %w", method, path, err)
		}
	}
	return meta, nil
}

// raw sends a request and returns the response for 2xx answers; the caller
// closes the body. Connection errors fail over to the next address.
func (c *Client) raw(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var payload []byte
	contentType := ""
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		contentType = "application/json"
	}
	return c.send(ctx, method, path, query, payload, contentType, "")
}

// send sends a request with an encoded body (contentType "" for none)
// and, unless accept is "", an Accept header; it returns the response for
// 2xx answers and the caller closes the body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, payload []byte, contentType, accept string) (*http.Response, error) {
	var headers map[string]string
	if accept != "" {
		headers = map[string]string{"Accept": accept}
	}
	return c.sendHeaders(ctx, method, path, query, payload, contentType, headers)
}

// sendHeaders is send with any request headers.
func (c *Client) sendHeaders(ctx context.Context, method, path string, query url.Values, payload []byte, contentType string, headers map[string]string) (*http.Response, error) {
	var lastErr error
	for _, base := range c.addrs {
		u := base + path
		if len(query) > 0 {
			u += "?" + query.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if c.token != "" {
			req.Header.Set(TokenHeader, c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = fmt.Errorf("%s %s: %w", method, u, err)
			// A write that may have reached the server is not sent
			// again elsewhere: it could apply twice (a register after
			// a stop that came between). Reads and unsent writes are.
			if method != http.MethodGet && method != http.MethodHead && !notSent(err) {
				return nil, lastErr
			}
			continue
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		outcomeUnknown := resp.Header.Get(OutcomeHeader) == "unknown" && method != http.MethodGet
		apiErr := readAPIError(resp)
		// 503 means this server has no leader; another may, unless
		// the write was taken and may still commit.
		if resp.StatusCode == http.StatusServiceUnavailable && !outcomeUnknown {
			lastErr = apiErr
			continue
		}
		return nil, apiErr
	}
	return nil, lastErr
}

// OutcomeHeader is set to "unknown" on a 503 whose write the server had
// handed to Raft when it lost its leadership: the write may still commit,
// so the client reports the error instead of sending it to another server.
const OutcomeHeader = "X-Gantry-Outcome"

// notSent reports whether a request failed before any of it reached a
// server (the connection was never made), so sending it elsewhere cannot
// apply it twice.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// readAPIError reads and closes a non-2xx answer.
func readAPIError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var er ErrorResponse
	if json.Unmarshal(b, &er) != nil || er.Error == "" {
		er.Error = strings.TrimSpace(string(b))
	}
	return &APIError{StatusCode: resp.StatusCode, Message: er.Error, Fields: er.Fields}
}

// decodeResponse decodes a 2xx JSON answer into out, or returns the
// APIError of any other; it closes the body.
func decodeResponse(resp *http.Response, out any) error {
	if resp.StatusCode/100 != 2 {
		return readAPIError(resp)
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}
