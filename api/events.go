package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/stream"
)

type (
	// Event is one change the server derived from a committed entry,
	// with the index, topic, type and namespace its line and group give.
	Event = stream.WireEvent
	// EventBatch is one line of the event stream, its groups flattened
	// into events in order.
	EventBatch = stream.WireBatch
)

// Event stream error codes (EventStreamError.Code).
const (
	EventIndexTooOld = stream.CodeIndexTooOld
	EventSlow        = stream.CodeSlow
	EventReset       = stream.CodeReset
	EventClosed      = stream.CodeClosed
)

// EventStreamOptions selects what GET /v1/event/stream sends.
type EventStreamOptions struct {
	// Topics, Keys and Namespaces filter the events (empty: all). Keys
	// match an event's object ID and, for allocations, their job and
	// node.
	Topics     []string
	Keys       []string
	Namespaces []string
	// Resume starts after the entry at Index instead of with the next
	// change.
	Resume bool
	Index  uint64
	// Full asks for whole objects as allocation payloads rather than the
	// summary the stream sends by default.
	Full bool
}

// EventStreamError is the server's last line: why it ended the stream.
// Floor is the lowest index to resume from.
type EventStreamError struct {
	Code  string
	Msg   string
	Floor uint64
}

func (e *EventStreamError) Error() string { return fmt.Sprintf("event stream: %s (%s)", e.Msg, e.Code) }

// EventStream follows GET /v1/event/stream. Next returns each line
// (events, or a heartbeat without events) until the stream ends.
type EventStream struct {
	body  io.ReadCloser
	sc    *bufio.Scanner
	index uint64
}

// maxEventLine bounds one line of the stream: one entry's events (a plan
// batch of thousands of placements).
const maxEventLine = 256 << 20

// EventStream opens the event stream. Close it when done.
func (c *Client) EventStream(ctx context.Context, o EventStreamOptions) (*EventStream, error) {
	q := url.Values{}
	if len(o.Topics) > 0 {
		q.Set("topic", strings.Join(o.Topics, ","))
	}
	if len(o.Keys) > 0 {
		q.Set("key", strings.Join(o.Keys, ","))
	}
	if len(o.Namespaces) > 0 {
		q.Set("namespace", strings.Join(o.Namespaces, ","))
	}
	if o.Full {
		q.Set("full", "true")
	}
	if o.Resume {
		q.Set("index", strconv.FormatUint(o.Index, 10))
	}
	resp, err := c.send(ctx, "GET", "/v1/event/stream", q, nil, "", "application/x-ndjson") //nolint:bodyclose // EventStream.Close closes it
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	es := &EventStream{body: resp.Body, sc: sc, index: o.Index}
	if idx, err := strconv.ParseUint(resp.Header.Get(IndexHeader), 10, 64); err == nil && !o.Resume {
		es.index = idx
	}
	return es, nil
}

// Next returns the next line: a batch of events, or a heartbeat (no
// events). It returns an *EventStreamError when the server ended the
// stream with a reason, io.EOF when it ended without one (the server
// stopped), or the read's error.
func (s *EventStream) Next() (*EventBatch, error) {
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return nil, fmt.Errorf("reading the event stream: %w", err)
		}
		return nil, io.EOF
	}
	var l stream.WireLine
	if err := json.Unmarshal(s.sc.Bytes(), &l); err != nil {
		return nil, fmt.Errorf("decoding an event stream line: %w", err)
	}
	if l.Error != "" || l.Code != "" {
		return nil, &EventStreamError{Code: l.Code, Msg: l.Error, Floor: l.Index}
	}
	s.index = l.Index
	return l.Batch(), nil
}

// Index is the index of the last line read: resume from it.
func (s *EventStream) Index() uint64 { return s.index }

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
