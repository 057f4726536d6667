package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gantry-project/gantry/internal/structs"
)

// The framework API (two-level scheduling, `gantry server --scheduler
// two-level`), in the shape of the Mesos v1 scheduler API. The Go SDK in
// api/framework builds on these calls; see docs/frameworks.md.

type (
	FrameworkCall      = structs.FrameworkCall
	FrameworkInfo      = structs.FrameworkInfo
	FrameworkEvent     = structs.FrameworkEvent
	CallType           = structs.CallType
	EventType          = structs.EventType
	CallSubscribe      = structs.CallSubscribe
	CallAccept         = structs.CallAccept
	CallDecline        = structs.CallDecline
	CallKill           = structs.CallKill
	CallAcknowledge    = structs.CallAcknowledge
	CallReconcile      = structs.CallReconcile
	ReconcileTask      = structs.ReconcileTask
	Filters            = structs.Filters
	OfferOperation     = structs.OfferOperation
	LaunchOperation    = structs.LaunchOperation
	TaskInfo           = structs.TaskInfo
	Offer              = structs.Offer
	TaskStatus         = structs.TaskStatus
	FrameworkTaskState = structs.FrameworkTaskState
	FrameworkTask      = structs.FrameworkTask
	FrameworkStatus    = structs.FrameworkStatus
	FrameworkDetail    = structs.FrameworkDetail
	AcceptResponse     = structs.AcceptResponse
)

// Headers of the framework API.
const (
	// StreamIDHeader is set on a SUBSCRIBE answer; every later call of the
	// framework carries it, so calls of an instance that was replaced (a
	// new SUBSCRIBE took over) are refused.
	StreamIDHeader = "Gantry-Stream-Id"
	// FrameworkIDHeader is set on a SUBSCRIBE answer.
	FrameworkIDHeader = "Gantry-Framework-Id"
	// FrameworkStreamContentType is the SUBSCRIBE stream's: one JSON event
	// per line.
	FrameworkStreamContentType = "application/x-ndjson"
)

// FrameworkCallPath is the endpoint every framework call goes to.
const FrameworkCallPath = "/v1/frameworks/scheduler"

// Frameworks lists the registered frameworks (GET /v1/frameworks).
func (c *Client) Frameworks(ctx context.Context) ([]*FrameworkStatus, error) {
	var out []*FrameworkStatus
	_, err := c.do(ctx, "GET", "/v1/frameworks", nil, nil, &out)
	return out, err
}

// Framework reads one framework, by ID or name, with its tasks (GET
// /v1/framework/{id}).
func (c *Client) Framework(ctx context.Context, ref string) (*FrameworkDetail, error) {
	var out FrameworkDetail
	_, err := c.do(ctx, "GET", "/v1/framework/"+url.PathEscape(ref), nil, nil, &out)
	return &out, err
}

// FrameworkStream is a subscribed framework's stream of events.
type FrameworkStream struct {
	// StreamID identifies the subscription; calls carry it.
	StreamID string
	// FrameworkID is the framework's ID (also in the SUBSCRIBED event).
	FrameworkID string
	body        io.ReadCloser
	dec         *json.Decoder
}

// Next returns the next event; io.EOF once the server ends the stream.
func (s *FrameworkStream) Next() (*FrameworkEvent, error) {
	var ev FrameworkEvent
	if err := s.dec.Decode(&ev); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		return nil, err
	}
	return &ev, nil
}

// Close ends the subscription from this side (the framework is then
// disconnected; its tasks run on until its failover timeout).
func (s *FrameworkStream) Close() error { return s.body.Close() }

// SubscribeFramework sends SUBSCRIBE and returns the stream of events.
// info.ID set subscribes again as that framework (keeping its tasks).
func (c *Client) SubscribeFramework(ctx context.Context, info FrameworkInfo) (*FrameworkStream, error) {
	call := &FrameworkCall{FrameworkID: info.ID, Type: structs.CallTypeSubscribe, Subscribe: &CallSubscribe{FrameworkInfo: info}}
	payload, err := json.Marshal(call)
	if err != nil {
		return nil, err
	}
	//nolint:bodyclose // the stream owns the body: FrameworkStream.Close closes it.
	resp, err := c.sendWith(ctx, "POST", FrameworkCallPath, payload, map[string]string{"Accept": FrameworkStreamContentType})
	if err != nil {
		return nil, err
	}
	return &FrameworkStream{
		StreamID:    resp.Header.Get(StreamIDHeader),
		FrameworkID: resp.Header.Get(FrameworkIDHeader),
		body:        resp.Body,
		dec:         json.NewDecoder(resp.Body),
	}, nil
}

// CallFramework sends a call other than SUBSCRIBE on a subscription's
// stream. ACCEPT answers with each task's launch status; other calls with
// nil.
func (c *Client) CallFramework(ctx context.Context, streamID string, call *FrameworkCall) (*AcceptResponse, error) {
	payload, err := json.Marshal(call)
	if err != nil {
		return nil, err
	}
	resp, err := c.sendWith(ctx, "POST", FrameworkCallPath, payload, map[string]string{StreamIDHeader: streamID})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil
	}
	var out AcceptResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s call: decoding response: %w", call.Type, err)
	}
	return &out, nil
}

// sendWith sends a JSON body with extra headers, trying each address as
// send does.
func (c *Client) sendWith(ctx context.Context, method, path string, payload []byte, headers map[string]string) (*http.Response, error) {
	return c.sendHeaders(ctx, method, path, nil, payload, "application/json", headers)
}
