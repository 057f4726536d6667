package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// streamUntil reads the stream until cond holds over the events read so
// far, and returns them as "Topic Type Key".
func streamUntil(t *testing.T, es *api.EventStream, what string, cond func([]string) bool) []string {
	t.Helper()
	var got []string
	var last uint64
	done := make(chan error, 1)
	go func() {
		for {
			b, err := es.Next()
			if err != nil {
				done <- err
				return
			}
			if b.Index < last {
				done <- fmt.Errorf("line at index %d after one at %d", b.Index, last)
				return
			}
			last = b.Index
			for _, e := range b.Events {
				if e.Index != b.Index {
					done <- fmt.Errorf("event %s %s at %d in the line of %d", e.Type, e.Key, e.Index, b.Index)
					return
				}
				got = append(got, e.Topic+" "+e.Type+" "+e.Key)
			}
			if cond(got) {
				done <- nil
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiting for %s: %v (read %q)", what, err, got)
		}
	case <-time.After(30 * time.Second):
		_ = es.Close()
		<-done
		t.Fatalf("waiting for %s: read %q", what, got)
	}
	return got
}

func count(events []string, prefix string) int {
	n := 0
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func TestEventStreamHTTP(t *testing.T) {
	cfg := testConfig(t)
	cfg.Events.Broker.Linger = 0
	s, c := startServer(t, cfg)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	es, err := c.EventStream(ctx, api.EventStreamOptions{Topics: []string{"Job", "Allocation", "Node"}})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	for i := range 2 {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%d", i), 4000, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 3)); err != nil {
		t.Fatal(err)
	}
	got := streamUntil(t, es, "three placements", func(ev []string) bool {
		return count(ev, "Allocation AllocationPlaced") == 3
	})
	if count(got, "Node NodeRegistered") != 2 || count(got, "Job JobRegistered web") != 1 {
		t.Fatalf("events %q", got)
	}
	mark := es.Index()

	// A filtered stream resumed from the mark sees the stop and nothing
	// of other topics.
	if _, err := c.StopJob(bg, "web", false); err != nil {
		t.Fatal(err)
	}
	rs, err := c.EventStream(ctx, api.EventStreamOptions{Topics: []string{"Job"}, Keys: []string{"web"}, Resume: true, Index: mark})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	got = streamUntil(t, rs, "the stop", func(ev []string) bool { return slices.Contains(ev, "Job JobStopped web") })
	for _, e := range got {
		if !strings.HasPrefix(e, "Job ") {
			t.Fatalf("filtered stream sent %q", e)
		}
	}

	// Once nobody listens nothing is recorded: a resume from before a
	// change made then says so.
	_ = es.Close()
	_ = rs.Close()
	waitFor(t, 10*time.Second, "the streams to end", func() (bool, string) {
		return s.events.Stats().Subscribers == 0, fmt.Sprintf("%+v", s.events.Stats())
	})
	reg, err := c.RegisterNode(bg, fakeNode("n9", 4000, 4096))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.EventStream(ctx, api.EventStreamOptions{Resume: true, Index: mark})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.Next()
	var ee *api.EventStreamError
	if !errors.As(err, &ee) || ee.Code != api.EventIndexTooOld || ee.Floor < reg.Index {
		t.Fatalf("resume from %d after a change at %d nobody heard: %v", mark, reg.Index, err)
	}

	// Bad parameters are refused before the stream starts.
	_, err = c.EventStream(ctx, api.EventStreamOptions{Topics: []string{"Jobz"}})
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "unknown topic") {
		t.Fatalf("unknown topic: %v", err)
	}
}

// TestEventStreamCoalesced: a stream that waits a long while between
// writes (Coalesce) still sends every event once, in index order, and
// ends with the reason when the broker ends it while it waits.
func TestEventStreamCoalesced(t *testing.T) {
	cfg := testConfig(t)
	cfg.Events.Coalesce = 300 * time.Millisecond
	s, c := startServer(t, cfg)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	es, err := c.EventStream(ctx, api.EventStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	const nodes = 6
	for i := range nodes {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%d", i), 4000, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 4)); err != nil {
		t.Fatal(err)
	}
	got := streamUntil(t, es, "four placements", func(ev []string) bool {
		return count(ev, "Allocation AllocationPlaced") == 4
	})
	for i := range nodes {
		if n := count(got, fmt.Sprintf("Node NodeRegistered n%d", i)); n != 1 {
			t.Fatalf("node n%d registered %d times in %q", i, n, got)
		}
	}
	if n := count(got, "Job JobRegistered web"); n != 1 {
		t.Fatalf("job registered %d times in %q", n, got)
	}
	// Ended while it waits between writes: the reason is its last line.
	mark := es.Index()
	s.events.Reset(mark, "test reset")
	for {
		_, err := es.Next()
		var ee *api.EventStreamError
		if errors.As(err, &ee) {
			if ee.Code != api.EventReset {
				t.Fatalf("stream ended with %v", err)
			}
			break
		}
		if err != nil {
			t.Fatalf("stream ended without its reason: %v", err)
		}
	}
}

// TestEventStreamSlowClientDropped: a client that never reads is dropped
// once it falls behind the ring, and the server keeps committing.
func TestEventStreamSlowClientDropped(t *testing.T) {
	cfg := testConfig(t)
	cfg.Events.Broker.MaxBatches = 4
	cfg.Events.WriteTimeout = time.Minute // dropped by the broker, not the timeout
	s, c := startServer(t, cfg)
	for i := range 4 {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%d", i), 1<<30, 1<<30)); err != nil {
			t.Fatal(err)
		}
	}
	// A connection with a small receive window that sends its request
	// and never reads the answer.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /v1/event/stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the subscriber", func() (bool, string) {
		return s.events.Stats().Subscribers == 1, "not subscribed"
	})
	// Jobs of 500 copies: each plan entry is a line of ~250 KB, 10 MB in
	// all, more than the kernel buffers of the connection hold.
	const jobs = 40
	for i := range jobs {
		if _, err := c.RegisterJob(bg, mockJob(fmt.Sprintf("job-%d", i), 500)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range jobs {
		waitLive(t, c, fmt.Sprintf("job-%d", i), 500)
	}
	waitFor(t, 30*time.Second, "the slow subscriber to be dropped", func() (bool, string) {
		return s.events.Stats().Subscribers == 0, fmt.Sprintf("%+v", s.events.Stats())
	})
	// What it could read ends with the reason.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(conn)
	sc.Buffer(nil, 64<<20)
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	if !strings.Contains(last, api.EventSlow) {
		t.Logf("last line read: %.200s (the connection may be cut before the reason arrives)", last)
	}
}

// TestEventStreamUnchunked: the stream's body is its lines as they are,
// not chunked, ended by closing the connection (one socket write per
// flush, not three), with the server's last line before the close.
func TestEventStreamUnchunked(t *testing.T) {
	cfg := testConfig(t)
	cfg.Events.Coalesce = 0
	s, c := startServer(t, cfg)
	conn, err := net.Dial("tcp", s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /v1/event/stream?topic=Node HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = conn.Close() // first: closing the body would read it to its end
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 0 || !resp.Close || resp.ContentLength != -1 {
		t.Fatalf("status %d, transfer encoding %q, close %v, length %d; want 200, none, close, unknown",
			resp.StatusCode, resp.TransferEncoding, resp.Close, resp.ContentLength)
	}
	if _, err := c.RegisterNode(bg, fakeNode("n1", 4000, 4096)); err != nil {
		t.Fatal(err)
	}
	// Without a transfer encoding the body is the bytes after the
	// headers as they are: the lines.
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `{"index":`) || !strings.Contains(line, `"type":"NodeRegistered"`) {
		t.Fatalf("first bytes of the body %q, %v; want the node's line", line, err)
	}
	s.events.Reset(s.events.Stats().Floor+1000, "test reset")
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), `"code":"reset"}`+"\n") {
		t.Fatalf("after the reset: %q, %v; want its line, then the end", rest, err)
	}
}

// TestEventAllowed: with ACLs on, a stream keeps only the events the
// token may read.
func TestEventAllowed(t *testing.T) {
	pol, err := acl.Parse(`namespace "team-a" { policy = "read" }`)
	if err != nil {
		t.Fatal(err)
	}
	allow := eventAllowed(acl.Compile(pol))
	tests := []struct {
		ev   stream.Event
		want bool
	}{
		{stream.Event{Topic: stream.TopicJob, Namespace: "team-a"}, true},
		{stream.Event{Topic: stream.TopicAllocation, Namespace: "team-a"}, true},
		{stream.Event{Topic: stream.TopicJob, Namespace: "team-b"}, false},
		{stream.Event{Topic: stream.TopicPlan}, false}, // the default namespace
		{stream.Event{Topic: stream.TopicNode}, false},
		{stream.Event{Topic: stream.TopicServer}, false},
	}
	for _, tt := range tests {
		if got := allow(&tt.ev); got != tt.want {
			t.Errorf("%s in %q: allowed %v, want %v", tt.ev.Topic, tt.ev.Namespace, got, tt.want)
		}
	}
	if all := eventAllowed(acl.Management); !all(&stream.Event{Topic: stream.TopicServer}) {
		t.Error("a management token is refused a server event")
	}
}

// TestEventStreamAllocPayloads: an allocation's event carries a summary
// of it; ?full=true the whole allocation (without its job).
func TestEventStreamAllocPayloads(t *testing.T) {
	cfg := testConfig(t)
	cfg.Events.Broker.Linger = 0
	_, c := startServer(t, cfg)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	open := func(full bool) *api.EventStream {
		es, err := c.EventStream(ctx, api.EventStreamOptions{Topics: []string{"Allocation"}, Full: full})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = es.Close() })
		return es
	}
	summary, whole := open(false), open(true)
	if _, err := c.RegisterNode(bg, fakeNode("n0", 4000, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 1)); err != nil {
		t.Fatal(err)
	}
	first := func(es *api.EventStream) map[string]any {
		t.Helper()
		for {
			b, err := es.Next()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range b.Events {
				if e.Type != "AllocationPlaced" {
					continue
				}
				var p map[string]any
				if err := json.Unmarshal(e.Payload, &p); err != nil {
					t.Fatalf("payload %s: %v", e.Payload, err)
				}
				if p["job_id"] != "web" || p["desired_status"] != "run" || p["node_id"] == "" || p["id"] != nil && p["id"] != e.Key {
					t.Fatalf("payload %s", e.Payload)
				}
				return p
			}
		}
	}
	// The summary leaves out the ID and modify index (the event's key
	// and index), and of a placement the create index (the same); the
	// whole allocation has them.
	if p := first(summary); p["resources"] != nil || p["job"] != nil || p["client_status"] == nil || p["create_index"] != nil || p["id"] != nil || p["modify_index"] != nil {
		t.Errorf("summary payload %v", p)
	}
	if p := first(whole); p["resources"] == nil || p["job"] != nil || p["task_state"] == nil || p["id"] == nil || p["modify_index"] == nil {
		t.Errorf("full payload %v", p)
	}
}

// eventRequest reads full= as a boolean and refuses anything else.
func TestEventRequestFull(t *testing.T) {
	for _, tc := range []struct {
		query   string
		full    bool
		wantErr string
	}{
		{"", false, ""}, {"full=true", true, ""}, {"full=1", true, ""}, {"full=false", false, ""},
		{"full=yes", false, `full: must be true or false (got "yes")`},
	} {
		r, err := http.NewRequest(http.MethodGet, "/v1/event/stream?"+tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := eventRequest(r)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.query, err, tc.wantErr)
			}
		case err != nil || req.Full != tc.full:
			t.Errorf("%q: full %v, %v; want %v", tc.query, req.Full, err, tc.full)
		}
	}
}

// A filtered subscriber's line regroups the events it keeps: a run
// broken only by events it filtered out is one group.
func TestWriteEventLineGroups(t *testing.T) {
	broker, err := stream.New(stream.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	sub, err := broker.Subscribe(stream.SubscribeRequest{Filter: stream.Filter{Topics: []stream.Topic{stream.TopicAllocation, stream.TopicNode}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ev := func(topic stream.Topic, typ, key, ns string) *stream.Event {
		return &stream.Event{Topic: topic, Type: typ, Key: key, Namespace: ns, Payload: map[string]string{"k": key}}
	}
	broker.Want(5)
	broker.Publish(5, func() []*stream.Event {
		return []*stream.Event{
			ev(stream.TopicAllocation, "AllocationPlaced", "a1", "default"),
			ev(stream.TopicPlan, "PlanApplied", "web", "default"),
			ev(stream.TopicAllocation, "AllocationPlaced", "a2", "default"),
			ev(stream.TopicNode, "NodeDrain", "n1", ""),
		}
	})
	batch, err := sub.Next(bg)
	if err != nil {
		t.Fatal(err)
	}
	if batch.Line() != nil {
		t.Fatal("a filtered batch has the entry's line")
	}
	var sb strings.Builder
	bw := bufio.NewWriter(&sb)
	writeBatch(bw, batch, false)
	writeEventLine(bw, 6, nil, false)
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	const want = `{"index":5,"groups":[` +
		`{"topic":"Allocation","type":"AllocationPlaced","namespace":"default","events":[{"key":"a1","payload":{"k":"a1"}},{"key":"a2","payload":{"k":"a2"}}]},` +
		`{"topic":"Node","type":"NodeDrain","events":[{"key":"n1","payload":{"k":"n1"}}]}]}` + "\n" +
		`{"index":6}` + "\n"
	if sb.String() != want {
		t.Errorf("got\n%s\nwant\n%s", sb.String(), want)
	}
}

// TestEventStreamOverTLS: over TLS (HTTP/1.1: the API listener offers no
// HTTP/2) the stream is unchunked too, its lines as they are.
func TestEventStreamOverTLS(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t)
	cfg.TLS = p.cfg[tlsutil.RoleServer]
	cfg.Events.Coalesce = 0
	s, _ := startServer(t, cfg)
	clientCert := p.cfg[tlsutil.RoleClient]
	hc := caller(t, &clientCert)
	hc.Timeout = 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+s.HTTPAddr()+"/v1/event/stream?topic=Node", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("status %d, transfer encoding %q, close %v; want 200, none, close",
			resp.StatusCode, resp.TransferEncoding, resp.Close)
	}
	agent := tlsAPIClient(t, s.HTTPAddr(), p.cfg[tlsutil.RoleAgent])
	if _, err := agent.RegisterNode(bg, fakeNode("n1", 4000, 4096)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"type":"NodeRegistered"`) {
		t.Fatalf("first line %q, %v; want the node's line", line, err)
	}
}
