package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// maxFilterValues bounds the topics, keys and namespaces one stream
// filters on.
const maxFilterValues = 256

// eventStream serves GET /v1/event/stream: NDJSON, one line per committed
// entry with matching events, heartbeats while idle, and a last line with
// an error when the server ends the stream (docs/api.md). It is answered
// by the server that receives it, from its own FSM.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := eventRequest(r)
	if err != nil {
		return nil, err
	}
	if s.cfg.ACL.Enabled {
		req.Filter.Allow = eventAllowed(s.aclOf(r))
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	// Not chunked: the body ends when the connection closes, as a
	// stream's does anyway. A chunk costs net/http three writes to the
	// socket (its header and the first 4 KiB through the connection's
	// buffer, the rest, then the CRLF at the flush): one write per flush
	// instead, to each subscriber.
	w.Header().Set("Transfer-Encoding", "identity")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK) // a stream has no length to announce
		return nil, nil
	}
	sub, err := s.events.Subscribe(req)
	var serr *stream.Error
	if errors.As(err, &serr) {
		// The stream exists but cannot start where asked: say why as
		// its one line, as it would say why it ended.
		w.Header().Set(api.IndexHeader, strconv.FormatUint(max(serr.Floor, 1), 10))
		w.WriteHeader(http.StatusOK)
		bw := bufio.NewWriter(w)
		writeEventError(bw, serr)
		_ = bw.Flush()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	// A subscriber the broker drops (it fell behind) may be blocked in a
	// write to a client that reads nothing: cut that write short.
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-sub.Done():
			_ = rc.SetWriteDeadline(time.Now().Add(time.Second))
		case <-stopWatch:
		}
	}()
	defer func() {
		close(stopWatch)
		<-watchDone
		_ = rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	}()

	w.Header().Set(api.IndexHeader, strconv.FormatUint(max(sub.LastIndex(), 1), 10))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, eventBufferBytes)
	full := sub.Full()
	flush := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.Events.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := flush(); err != nil {
		return nil, nil
	}
	heartbeat := time.NewTicker(s.cfg.Events.Heartbeat)
	defer heartbeat.Stop()
	coalesce := time.NewTimer(time.Hour)
	coalesce.Stop()
	defer coalesce.Stop()
	for {
		batch, err := sub.NextOrIdle(r.Context(), heartbeat.C)
		caughtUp := false
		switch {
		case errors.As(err, &serr):
			writeEventError(bw, serr)
			_ = flush()
			return nil, nil
		case err != nil:
			return nil, nil // the client went away
		case batch == nil:
			writeEventLine(bw, sub.LastIndex(), nil, false)
		default:
			writeBatch(bw, batch, full)
			heartbeat.Reset(s.cfg.Events.Heartbeat)
			// Drain what is ready before flushing: a subscriber that is
			// behind gets many entries per write rather than a write
			// (and a flush through the HTTP stack) per entry.
			for bw.Buffered() < eventFlushBytes {
				more, err := sub.TryNext()
				if err != nil || more == nil {
					caughtUp = err == nil
					break // an error is read again by NextOrIdle
				}
				writeBatch(bw, more, full)
			}
		}
		if err := flush(); err != nil {
			return nil, nil
		}
		if caughtUp && s.cfg.Events.Coalesce > 0 {
			// Sent all there was: let entries gather for a while rather
			// than wake and write for each as it commits. A subscriber
			// still behind (its buffer filled) writes again at once.
			coalesce.Reset(s.cfg.Events.Coalesce)
			select {
			case <-coalesce.C:
			case <-sub.Done():
			case <-r.Context().Done():
			}
		}
	}
}

// eventFlushBytes is how much a stream writes, at most, before flushing
// (a batch of events is never split): half its buffer.
const eventFlushBytes = eventBufferBytes / 2

// eventBufferBytes is a stream's write buffer.
const eventBufferBytes = 64 << 10

// writeBatch writes a batch's line: the broker's own when the batch is
// whole (no copy is made of a line larger than the buffer).
func writeBatch(bw *bufio.Writer, b *stream.Batch, full bool) {
	if line := b.Line(); line != nil {
		_, _ = bw.Write(line)
		return
	}
	writeEventLine(bw, b.Index, b.Events, full)
}

// writeEventLine writes {"index":N,"groups":[...]} from the events'
// shared encodings (the full ones when full is set), a group for each
// run of events of one topic, type and namespace.
func writeEventLine(bw *bufio.Writer, index uint64, events []*stream.Event, full bool) {
	var num [20]byte
	var head [256]byte
	_, _ = bw.WriteString(`{"index":`)
	_, _ = bw.Write(strconv.AppendUint(num[:0], index, 10))
	if len(events) > 0 {
		_, _ = bw.WriteString(`,"groups":[`)
		for i, e := range events {
			switch {
			case i == 0:
				_, _ = bw.Write(stream.AppendGroupHead(head[:0], e))
			case !stream.SameGroup(events[i-1], e):
				_, _ = bw.WriteString("]},")
				_, _ = bw.Write(stream.AppendGroupHead(head[:0], e))
			default:
				_ = bw.WriteByte(',')
			}
			_, _ = bw.Write(e.EncodedFor(full))
		}
		_, _ = bw.WriteString("]}]")
	}
	_, _ = bw.WriteString("}\n")
}

func writeEventError(bw *bufio.Writer, e *stream.Error) {
	line, _ := json.Marshal(stream.WireLine{Index: e.Floor, Error: e.Msg, Code: e.Code})
	_, _ = bw.Write(line)
	_ = bw.WriteByte('\n')
}

// eventRequest reads the stream's parameters: topic, key, namespace
// (each repeated or comma-separated) and index.
// eventAllowed keeps the events the caller's token may read: a job's,
// allocation's, deployment's or plan's with read in its namespace, a
// node's with node read, a server's with operator read.
func eventAllowed(a *acl.ACL) func(*stream.Event) bool {
	return func(e *stream.Event) bool {
		switch e.Topic {
		case stream.TopicNode:
			return a.AllowNode(acl.LevelRead)
		case stream.TopicServer:
			return a.AllowOperator(acl.LevelRead)
		}
		ns := e.Namespace
		if ns == "" {
			ns = structs.DefaultNamespace
		}
		return a.AllowNamespace(ns, acl.CapRead)
	}
}

func eventRequest(r *http.Request) (stream.SubscribeRequest, error) {
	var req stream.SubscribeRequest
	q := r.URL.Query()
	list := func(name string) ([]string, error) {
		var out []string
		for _, v := range q[name] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		if len(out) > maxFilterValues {
			return nil, badRequest("%s: at most %d values (got %d)", name, maxFilterValues, len(out))
		}
		return out, nil
	}
	topics, err := list("topic")
	if err != nil {
		return req, err
	}
	for _, t := range topics {
		topic, err := stream.ParseTopic(t)
		if err != nil {
			return req, badRequest("topic: %v", err)
		}
		req.Filter.Topics = append(req.Filter.Topics, topic)
	}
	if req.Filter.Keys, err = list("key"); err != nil {
		return req, err
	}
	if req.Filter.Namespaces, err = list("namespace"); err != nil {
		return req, err
	}
	if v := q.Get("full"); v != "" {
		full, err := strconv.ParseBool(v)
		if err != nil {
			return req, badRequest("full: must be true or false (got %q)", v)
		}
		req.Full = full
	}
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return req, badRequest("index: must be a non-negative integer (got %q)", v)
		}
		req.Resume, req.Index = true, n
	}
	return req, nil
}
