package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gantry-project/gantry/api"
)

// EventStreamOptions are the flags of `gantry event stream`.
type EventStreamOptions struct {
	Topics, Keys, Namespaces []string
	// Index, when Resume, starts after that entry.
	Index  uint64
	Resume bool
	// Full asks for whole allocations as payloads.
	Full bool
}

// EventStream prints the event stream until ctx ends or the server ends
// it: a line per event (index, topic, type, key), or with -o json each
// event as one JSON line (NDJSON, the payload included).
func (e *Env) EventStream(ctx context.Context, o EventStreamOptions) error {
	es, err := e.Client.EventStream(ctx, api.EventStreamOptions{Topics: o.Topics, Keys: o.Keys,
		Namespaces: o.Namespaces, Resume: o.Resume, Index: o.Index, Full: o.Full})
	if err != nil {
		return fmt.Errorf("event stream: %w", e.Humanize(err))
	}
	defer func() { _ = es.Close() }()
	enc := json.NewEncoder(e.Out)
	enc.SetEscapeHTML(false)
	if e.Format == FormatTable {
		fmt.Fprintf(e.Out, "%-10s %-11s %-22s %s\n", "INDEX", "TOPIC", "TYPE", "KEY")
	}
	for {
		b, err := es.Next()
		var se *api.EventStreamError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &se):
			if se.Code == api.EventIndexTooOld {
				return fmt.Errorf("%s\nrun again with --index %d (or without --index) to follow from there", se.Msg, se.Floor)
			}
			return fmt.Errorf("the server ended the stream: %s\nresume with --index %d", se.Msg, es.Index())
		case errors.Is(err, io.EOF):
			return fmt.Errorf("the server closed the stream (stopping?); resume with --index %d", es.Index())
		case err != nil:
			return err
		}
		for _, ev := range b.Events {
			if e.Format == FormatTable {
				fmt.Fprintf(e.Out, "%-10d %-11s %-22s %s\n", ev.Index, ev.Topic, ev.Type, sanitize(ev.Key))
				continue
			}
			// YAML has no streaming form: -o yaml prints JSON lines too.
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
	}
}
