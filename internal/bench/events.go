package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

// EventFigures are what the event subscribers of a run (Options.
// EventSubscribers) received during placement: the cost of the event
// stream is read beside the run's other figures (server CPU, time to
// place all) against a run without subscribers.
type EventFigures struct {
	Subscribers int   `json:"subscribers"`
	Events      int64 `json:"events"` // summed over subscribers
	Bytes       int64 `json:"bytes"`
	// PerSecond is Events over the placement window (all subscribers).
	PerSecond float64 `json:"events_per_s"`
	// Dropped counts subscribers the server ended (e.g. slow_subscriber)
	// with its reasons.
	Dropped int      `json:"dropped"`
	Reasons []string `json:"reasons,omitempty"`
}

// maxBenchEventLine bounds one line read by a subscriber (a plan batch of
// thousands of placements).
const maxBenchEventLine = 256 << 20

// eventFollowers reads GET /v1/event/stream with n subscribers, every
// topic, counting events and bytes and checking that lines come in index
// order (readEventLine).
type eventFollowers struct {
	hc      *http.Client
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	events  atomic.Int64
	bytes   atomic.Int64
	mu      sync.Mutex
	reasons []string
}

func startEventFollowers(parent context.Context, addr string, n int, certs *benchTLS) (*eventFollowers, error) {
	f := &eventFollowers{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n,
		TLSClientConfig: certs.forRole(tlsutil.RoleClient)}}}
	ctx, cancel := context.WithCancel(parent)
	f.cancel = cancel
	u, err := url.Parse(addr)
	if err != nil {
		cancel()
		return nil, err
	}
	u.Path = "/v1/event/stream"
	opened := make(chan error, n)
	for range n {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.follow(ctx, u.String(), opened)
		}()
	}
	// Wait until every subscriber has its stream open, so none misses
	// the first placements.
	for range n {
		if err := <-opened; err != nil {
			f.stop()
			return nil, err
		}
	}
	return f, nil
}

func (f *eventFollowers) follow(ctx context.Context, u string, opened chan<- error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		opened <- err
		return
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		opened <- fmt.Errorf("opening the event stream: %w", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		opened <- fmt.Errorf("opening the event stream: %s", resp.Status)
		return
	}
	opened <- nil
	lr := newEventLineReader(resp.Body)
	var last uint64
	for {
		l, n, err := lr.next()
		f.bytes.Add(int64(n))
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(ctx.Err(), context.Canceled) {
				f.drop(err.Error())
			}
			return
		}
		if l.code != "" || l.msg != "" {
			f.drop(l.code + ": " + l.msg)
			return
		}
		// Lines come in index order; a heartbeat repeats the last index.
		if l.index < last || (l.index == last && l.events > 0) {
			f.drop(fmt.Sprintf("out of order: index %d after %d", l.index, last))
			return
		}
		last = l.index
		f.events.Add(int64(l.events))
	}
}

// eventLineReader reads the stream's lines as they arrive without
// holding a whole line: the events of a line are counted read by read
// (a line of a c1m-like plan entry is megabytes), and only its head is
// kept, which for a short line (a heartbeat, an error) is all of it and
// goes to readEventLine. A bufio.Scanner held each line whole, copied it
// as its buffer filled, and looked for the newline from the line's start
// again after every read: on the cores the server uses.
type eventLineReader struct {
	r   io.Reader
	buf []byte
	// buf[pos:end] is read and not yet looked at.
	pos, end int
	// The current line: its first bytes, its length, the events counted,
	// and its last bytes (a marker cut by the end of a read).
	head   []byte
	n      int
	events int
	tail   [len(eventMarkerStr) - 1]byte
	ntail  int
}

// eventLineHead is how much of a line is kept: all of any line without
// events (a heartbeat or an error), and a long line's index.
const eventLineHead = 4 << 10

func newEventLineReader(r io.Reader) *eventLineReader {
	return &eventLineReader{r: r, buf: make([]byte, 256<<10), head: make([]byte, 0, eventLineHead)}
}

// next returns the next line and the bytes read for it (its newline
// included), or the read's error (io.EOF at the end of the stream).
func (lr *eventLineReader) next() (eventLine, int, error) {
	read := 0
	for {
		if lr.pos == lr.end {
			n, err := lr.r.Read(lr.buf)
			read += n
			lr.pos, lr.end = 0, n
			if n == 0 {
				if err == nil {
					continue
				}
				return eventLine{}, read, err
			}
		}
		p := lr.buf[lr.pos:lr.end]
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			lr.feed(p[:i])
			lr.pos += i + 1
			l, err := lr.line()
			return l, read, err
		}
		lr.feed(p)
		lr.pos = lr.end
		if lr.n > maxBenchEventLine {
			return eventLine{}, read, fmt.Errorf("event stream line longer than %d bytes", maxBenchEventLine)
		}
	}
}

// feed takes the next bytes of the current line.
func (lr *eventLineReader) feed(p []byte) {
	const m = len(eventMarkerStr) - 1
	// Markers that begin in the last bytes before p and end in it.
	var w [2 * m]byte
	k := copy(w[:], lr.tail[:lr.ntail])
	k += copy(w[k:], p[:min(len(p), m)])
	for i := range lr.ntail {
		if bytes.HasPrefix(w[i:k], eventMarker) {
			lr.events++
		}
	}
	lr.events += bytes.Count(p, eventMarker)
	if len(p) >= m {
		lr.ntail = copy(lr.tail[:], p[len(p)-m:])
	} else {
		lr.ntail = copy(lr.tail[:], w[max(k-m, 0):k])
	}
	if len(lr.head) < eventLineHead {
		lr.head = append(lr.head, p[:min(len(p), eventLineHead-len(lr.head))]...)
	}
	lr.n += len(p)
}

// line ends the current line and returns what it held.
func (lr *eventLineReader) line() (eventLine, error) {
	defer func() { lr.head, lr.n, lr.events, lr.ntail = lr.head[:0], 0, 0, 0 }()
	if lr.n <= eventLineHead {
		return readEventLine(lr.head)
	}
	index, _, err := lineIndex(lr.head)
	if err != nil {
		return eventLine{}, err
	}
	if lr.events == 0 {
		return eventLine{}, fmt.Errorf("event stream line of %d bytes without events: %.80q", lr.n, lr.head)
	}
	return eventLine{index: index, events: lr.events}, nil
}

// eventLine is what a bench subscriber reads of a line.
type eventLine struct {
	index     uint64
	events    int
	code, msg string
}

const eventMarkerStr = `{"key":`

var (
	eventLinePrefix = []byte(`{"index":`)
	eventMarker     = []byte(eventMarkerStr)
)

// readEventLine reads a line of the stream without decoding its events:
// the server writes each line as {"index":N,"groups":[{"topic":...,
// "events":[{"key":...},...]},...]} (its encoding is fixed:
// internal/stream), so the index is the number after the prefix and the
// events are counted by their opening bytes (none of the payloads the
// bench's jobs and nodes give has a "key" field: allocation summaries,
// plans, jobs without meta, nodes whose labels are the workload's; and
// JSON strings escape the quotes that would make one). Only a line
// without events, which may be the server's last (an error), is decoded.
// The bench's subscribers run on the cores the server uses: decoding
// 15 MB/s of events each with encoding/json cost more than the server
// spent sending them.
func readEventLine(b []byte) (eventLine, error) {
	var l eventLine
	index, rest, err := lineIndex(b)
	if err != nil {
		return l, err
	}
	l.index = index
	if l.events = bytes.Count(rest, eventMarker); l.events > 0 {
		return l, nil
	}
	var line struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(b, &line); err != nil {
		return l, fmt.Errorf("undecodable line: %w", err)
	}
	l.code, l.msg = line.Code, line.Error
	return l, nil
}

// lineIndex reads the index a line starts with, {"index":N, and returns
// the rest of the line.
func lineIndex(b []byte) (uint64, []byte, error) {
	if !bytes.HasPrefix(b, eventLinePrefix) {
		return 0, nil, fmt.Errorf("event stream line not understood: %.80q", b)
	}
	rest := b[len(eventLinePrefix):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	index, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("event stream line without an index: %.80q", b)
	}
	return index, rest[n:], nil
}

func (f *eventFollowers) drop(reason string) {
	f.mu.Lock()
	f.reasons = append(f.reasons, reason)
	f.mu.Unlock()
}

func (f *eventFollowers) stop() {
	f.cancel()
	f.wg.Wait()
	f.hc.CloseIdleConnections()
}

// figures stops the followers and returns what they received over a
// placement window of d.
func (f *eventFollowers) figures(n int, d time.Duration) EventFigures {
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	ef := EventFigures{Subscribers: n, Events: f.events.Load(), Bytes: f.bytes.Load(),
		Dropped: len(f.reasons), Reasons: f.reasons}
	if d > 0 {
		ef.PerSecond = float64(ef.Events) / d.Seconds()
	}
	return ef
}
