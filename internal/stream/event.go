// Package stream is the server's event broker: committed Raft entries
// become events (what each entry changed), kept in a bounded ring of
// recent batches from which any number of subscribers read at their own
// pace, resuming from an index. The FSM publishes without ever waiting on
// a subscriber: deriving and encoding the events happens on the broker's
// own goroutine, and a subscriber that falls further behind than the ring
// holds is dropped with a reason rather than slowing anyone.
//
// The package knows nothing of Raft or the state store: the server hands
// it an index and a function that derives that entry's events
// (internal/server/events.go).
package stream

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Topic groups events by what they are about.
type Topic string

// The topics. Plan events are the scheduler's decisions as committed (a
// plan per job per entry: placements, stops, evictions, why copies are
// pending); gantry has no evaluation objects, so "Evaluation" is accepted
// as another name for Plan. Deployment events mark a new version of a
// job rolling out and its end (stopped or purged).
const (
	TopicJob        Topic = "Job"
	TopicAllocation Topic = "Allocation"
	TopicNode       Topic = "Node"
	TopicDeployment Topic = "Deployment"
	TopicPlan       Topic = "Plan"
	TopicServer     Topic = "Server"
)

// Topics lists every topic in the order the docs give them.
func Topics() []Topic {
	return []Topic{TopicJob, TopicAllocation, TopicNode, TopicDeployment, TopicPlan, TopicServer}
}

// ParseTopic reads a topic name, case-insensitively ("Evaluation" is
// Plan). The error names the topics there are.
func ParseTopic(s string) (Topic, error) {
	if strings.EqualFold(s, "Evaluation") {
		return TopicPlan, nil
	}
	for _, t := range Topics() {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	names := make([]string, 0, 6)
	for _, t := range Topics() {
		names = append(names, string(t))
	}
	return "", fmt.Errorf("unknown topic %q (topics: %s)", s, strings.Join(names, ", "))
}

// Event is one change of one object, as the server derived it from a
// committed entry.
type Event struct {
	Topic Topic
	// Type says what happened (AllocationPlaced, NodeDrain ...).
	Type string
	// Key is the object's ID (job, allocation, node, server).
	Key string
	// Namespace is the namespace of the job the event concerns (empty for
	// nodes and servers).
	Namespace string
	// Index is the Raft index of the entry.
	Index uint64
	// FilterKeys are other IDs a key filter matches (an allocation's job
	// and node): not sent.
	FilterKeys []string
	// Payload is the object (or a summary), encoded once as JSON; a
	// JSONAppender writes itself, anything else goes through
	// encoding/json.
	Payload any
	// Full, when set, is the whole object Payload summarises, sent to
	// subscribers that ask for it (SubscribeRequest.Full). It is encoded
	// only while such a subscriber exists, so it must stay valid (not be
	// modified) for as long as the event is kept.
	Full any

	// encoded is the event's JSON as its group lists it ({"key":K,
	// "payload":P}), made by the broker before the event is
	// shared with subscribers; encodedFull the same with Full as payload,
	// made only while a subscriber wants it (nil otherwise).
	encoded     []byte
	encodedFull []byte
}

// Encoded returns the event's JSON as its group lists it, {"key":K,
// "payload":P} (set once the broker published it). A subscriber reads it
// only until it asks for its next batch (Subscription.Next).
func (e *Event) Encoded() []byte { return e.encoded }

// EncodedFor returns the event's JSON for a subscriber that wants full
// payloads or not. An event the broker encoded before the first such
// subscriber came is encoded again here (for this caller only: a
// published event is never modified).
func (e *Event) EncodedFor(full bool) []byte {
	if !full || e.Full == nil {
		return e.encoded
	}
	if e.encodedFull != nil {
		return e.encodedFull
	}
	b, err := e.appendJSON(nil, e.Full)
	if err != nil {
		return e.encoded // the summary rather than nothing
	}
	return b
}

// appendJSON appends the event with payload p as its group lists it,
// {"key":K,"payload":P}: its topic, type, namespace and index are the
// group's and the line's (AppendGroupHead), not repeated per event. The
// keys are written as constants and every write returns the slice (no
// object kept in memory between fields): see JSONObject.
func (e *Event) appendJSON(dst []byte, p any) ([]byte, error) {
	dst = append(dst, `{"key":`...)
	dst = AppendString(dst, e.Key)
	switch p := p.(type) {
	case nil:
	case JSONAppender:
		dst = append(dst, `,"payload":`...)
		dst = p.AppendJSON(dst)
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("event %s %s %s at %d: %w", e.Topic, e.Type, e.Key, e.Index, err)
		}
		if string(b) != "null" {
			dst = append(dst, `,"payload":`...)
			dst = append(dst, b...)
		}
	}
	return append(dst, '}'), nil
}

// SameGroup reports whether b goes in the same group as a, the event
// before it on a line: same topic, type and namespace.
func SameGroup(a, b *Event) bool {
	return a.Topic == b.Topic && a.Type == b.Type && a.Namespace == b.Namespace
}

// AppendGroupHead appends the start of the group that e opens,
// {"topic":T,"type":Y,"namespace":NS,"events":[ (no namespace for
// events without one); the group's events follow, separated by commas,
// and "]}" closes it.
func AppendGroupHead(dst []byte, e *Event) []byte {
	dst = append(dst, `{"topic":`...)
	dst = AppendString(dst, string(e.Topic))
	dst = append(dst, `,"type":`...)
	dst = AppendString(dst, e.Type)
	if e.Namespace != "" {
		dst = append(dst, `,"namespace":`...)
		dst = AppendString(dst, e.Namespace)
	}
	return append(dst, `,"events":[`...)
}

// WireEvent is an event as a client reads it (api.Event): the line's
// index and its group's topic, type and namespace, with its own key and
// payload.
type WireEvent struct {
	Topic     string          `json:"topic"`
	Type      string          `json:"type"`
	Key       string          `json:"key"`
	Namespace string          `json:"namespace,omitempty"`
	Index     uint64          `json:"index"`
	Payload   json.RawMessage `json:"payload,omitempty"`
}

// WireBatch is one line of GET /v1/event/stream as a client reads it
// (api.EventBatch), its groups flattened into events (WireLine.Batch):
// the events of one committed entry that match the subscriber's filter;
// a heartbeat (no events: every entry up to Index was looked at); or,
// last, an error saying why the stream ended.
type WireBatch struct {
	Index  uint64      `json:"index"`
	Events []WireEvent `json:"events,omitempty"`
	Error  string      `json:"error,omitempty"`
	// Code is the error's kind: CodeIndexTooOld, CodeSlow, CodeReset,
	// CodeClosed.
	Code string `json:"code,omitempty"`
}

// WireLine is one line of GET /v1/event/stream as the server writes it:
// the entry's events in groups, each group a run of consecutive events
// of one topic, type and namespace.
type WireLine struct {
	Index  uint64      `json:"index"`
	Groups []WireGroup `json:"groups,omitempty"`
	// Events are a line's events as servers before groups wrote them,
	// each whole (read, so a client follows a cluster being upgraded).
	Events []WireEvent `json:"events,omitempty"`
	Error  string      `json:"error,omitempty"`
	Code   string      `json:"code,omitempty"`
}

// WireGroup is a run of events of one topic, type and namespace.
type WireGroup struct {
	Topic     string           `json:"topic"`
	Type      string           `json:"type"`
	Namespace string           `json:"namespace,omitempty"`
	Events    []WireGroupEvent `json:"events"`
}

// WireGroupEvent is an event in its group: its key and payload.
type WireGroupEvent struct {
	Key     string          `json:"key"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Batch returns the line with its groups flattened into events, in
// order, each with the line's index.
func (l *WireLine) Batch() *WireBatch {
	b := &WireBatch{Index: l.Index, Events: l.Events, Error: l.Error, Code: l.Code}
	if len(l.Groups) == 0 {
		return b
	}
	n := len(l.Events)
	for i := range l.Groups {
		n += len(l.Groups[i].Events)
	}
	b.Events = make([]WireEvent, 0, n)
	b.Events = append(b.Events, l.Events...)
	for i := range l.Groups {
		g := &l.Groups[i]
		for _, e := range g.Events {
			b.Events = append(b.Events, WireEvent{Topic: g.Topic, Type: g.Type, Key: e.Key, Namespace: g.Namespace,
				Index: l.Index, Payload: e.Payload})
		}
	}
	return b
}

// Filter selects events. An empty field matches everything.
type Filter struct {
	Topics []Topic
	// Keys match an event's Key or one of its FilterKeys.
	Keys []string
	// Namespaces match an event's namespace; events without one (nodes,
	// servers) always match.
	Namespaces []string
	// Allow, if set, is asked last (access control by token).
	Allow func(*Event) bool
}

// Match reports whether the filter selects e.
func (f *Filter) Match(e *Event) bool {
	if len(f.Topics) > 0 && !slices.Contains(f.Topics, e.Topic) {
		return false
	}
	if len(f.Keys) > 0 && !slices.Contains(f.Keys, e.Key) && !slices.ContainsFunc(e.FilterKeys, func(k string) bool { return slices.Contains(f.Keys, k) }) {
		return false
	}
	if len(f.Namespaces) > 0 && e.Namespace != "" && !slices.Contains(f.Namespaces, e.Namespace) {
		return false
	}
	return f.Allow == nil || f.Allow(e)
}
