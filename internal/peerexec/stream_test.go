package peerexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestReadFrame(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, maxFrameSize+1)
	cases := []struct {
		name string
		in   []byte
		want []byte
		err  string
	}{
		{"frame", appendFrame(nil, []byte("hello")), []byte("hello"), ""},
		{"keepalive", appendFrame(nil, nil), nil, ""},
		{"too long", big, nil, "length 4194305, limit 4194304"},
		{"truncated body", append(binary.BigEndian.AppendUint32(nil, 10), "abc"...), nil, "truncated frame of 10 bytes"},
		{"truncated header", []byte{0, 0}, nil, "unexpected EOF"},
		{"empty", nil, nil, "EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("got %q %v, want %q", got, err, c.want)
			}
		})
	}
}

// FuzzReadFrame: any byte stream gives frames no longer than the limit
// or an error, never a panic; a frame read is the frame written.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, []byte(`[{"type":"load"}]`)))
	f.Add(appendFrame(appendFrame(nil, nil), []byte("x")))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<31))
	f.Add([]byte{0, 0, 0, 5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for i := 0; i < 1000; i++ {
			fr, err := readFrame(r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrBadFrame) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if len(fr) > maxFrameSize {
				t.Fatalf("frame of %d bytes", len(fr))
			}
			again, err := readFrame(bytes.NewReader(appendFrame(nil, fr)))
			if err != nil || !bytes.Equal(again, fr) {
				t.Fatalf("round trip: %q %v", again, err)
			}
		}
	})
}

// streamEnd is one peer's side: its streams and what it received.
type streamEnd struct {
	s    *streams
	srv  *httptest.Server
	mu   sync.Mutex
	got  []string
	ups  int
	down int
}

func newStreamEnd(t *testing.T, id string, d StreamDialer, tlsSrv bool, wrap func(http.Handler) http.Handler) *streamEnd {
	e := &streamEnd{}
	e.s = newStreams(id, d, func(b []byte) {
		e.mu.Lock()
		e.got = append(e.got, string(b))
		e.mu.Unlock()
	}, func(_ string, up bool) {
		e.mu.Lock()
		if up {
			e.ups++
		} else {
			e.down++
		}
		e.mu.Unlock()
	}, log.New(io.Discard, "", 0))
	var h http.Handler = http.HandlerFunc(e.s.accept)
	if wrap != nil {
		h = wrap(h)
	}
	if tlsSrv {
		e.srv = httptest.NewTLSServer(h)
	} else {
		e.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() { e.s.close(); e.srv.Close() })
	return e
}

func (e *streamEnd) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func (e *streamEnd) links() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ups, e.down
}

func addrOf(srv *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
}

func TestStreams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			b := newStreamEnd(t, "b", StreamDialer{}, useTLS, nil)
			d := StreamDialer{}
			if useTLS {
				d.TLS = b.srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			a := newStreamEnd(t, "a", d, false, nil)
			// "b" does not dial "a" (the smaller ID dials); "a" dials "b"
			b.s.ensure(map[string]string{"a": addrOf(a.srv)})
			if b.s.send("a", []byte("early")) {
				t.Fatal("sent before any stream was up")
			}
			a.s.ensure(map[string]string{"b": addrOf(b.srv)})
			waitUntil(t, "streams up", 5*time.Second, func() bool { return a.s.up("b") && b.s.up("a") })
			for i := 0; i < 100; i++ {
				if !a.s.send("b", []byte("ab")) || !b.s.send("a", []byte("ba")) {
					t.Fatal("send on an up stream failed")
				}
			}
			waitUntil(t, "frames", 5*time.Second, func() bool { return len(a.received()) == 100 && len(b.received()) == 100 })
			for _, m := range a.received() {
				if m != "ba" {
					t.Fatalf("a received %q", m)
				}
			}
			// the stream breaks: the dialer connects again, both sides told
			b.s.mu.Lock()
			sc := b.s.conns["a"]
			b.s.mu.Unlock()
			sc.close()
			waitUntil(t, "reconnect", 5*time.Second, func() bool {
				u, d := b.links()
				return u == 2 && d >= 1 && a.s.up("b") && b.s.up("a")
			})
			if !a.s.send("b", []byte("again")) {
				t.Fatal("send after reconnect failed")
			}
			waitUntil(t, "frame after reconnect", 5*time.Second, func() bool { return len(b.received()) == 101 })
		})
	}
}

func TestStreamRefused(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the ends' cleanups
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
		})
	}
	b := newStreamEnd(t, "b", StreamDialer{}, false, deny)
	_, err := StreamDialer{User: "x", Password: "y"}.dial(t.Context(), addrOf(b.srv), "a")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "bad credentials") {
		t.Fatalf("err %v, want the 401 and its message", err)
	}
	for _, c := range []struct{ from, upgrade, want string }{
		{"", streamProto, "missing"},
		{"a", "websocket", "want Upgrade"},
		{"b", streamProto, "itself"},
	} {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(streamFrom, c.from)
		req.Header.Set("Upgrade", c.upgrade)
		rec := httptest.NewRecorder()
		b.s.accept(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%+v: %d %q", c, rec.Code, rec.Body.String())
		}
	}
}

// TestLoadDeltas: over a stream a peer sends its load in full once, then
// only what changed; a delta completes the full load; without a stream
// the load is sent in full every interval.
func TestLoadDeltas(t *testing.T) {
	var sent []*Message
	cfg := DefaultConfig("a")
	cfg.Node = structs.Node{Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}
	cfg.HTTPAddr = "127.0.0.1:1"
	a, err := New(cfg, func(_ string, m *Message) { sent = append(sent, m) }, NewMemStore(), &nopRunner{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(DefaultConfig("b"), func(string, *Message) {}, NewMemStore(), &nopRunner{})
	if err != nil {
		t.Fatal(err)
	}
	cv := ClusterView{OK: true, Members: []string{"a", "b"}}
	now := time.Unix(1_700_000_000, 0)
	tick := func() []*Message {
		sent = nil
		now = now.Add(cfg.LoadInterval)
		a.Tick(now, cv)
		var loads []*Message
		for _, m := range sent {
			if m.Type == MsgLoad {
				loads = append(loads, m)
				b.Step(now, cv, m)
			}
		}
		return loads
	}
	if l := tick(); len(l) != 1 || l[0].Load.Delta || l[0].Load.Node == nil {
		t.Fatalf("without a stream: %+v, want one full load", l)
	}
	if l := tick(); len(l) != 1 || l[0].Load.Delta {
		t.Fatalf("without a stream, again: %+v, want one full load", l)
	}
	a.Linked("b", true)
	if l := tick(); len(l) != 1 || l[0].Load.Delta {
		t.Fatal("first load on a new stream is not full")
	}
	if l := tick(); len(l) != 0 {
		t.Fatalf("unchanged load sent again: %+v", l[0].Load)
	}
	a.addTask(&localTask{alloc: &structs.Allocation{ID: "x", JobID: "j", Resources: structs.Resources{CPU: 100}}})
	l := tick()
	if len(l) != 1 || !l[0].Load.Delta || l[0].Load.Node != nil || l[0].Load.Used.CPU != 100 {
		t.Fatalf("changed usage: %+v, want a delta with the new usage", l)
	}
	got := b.Loads()["a"]
	if got.Node == nil || got.Node.Capacity.CPU != 1000 || got.Used.CPU != 100 || got.HTTPAddr != cfg.HTTPAddr || got.Tasks != 1 {
		t.Fatalf("b's view of a: %+v", got)
	}
	// an older load arriving late is ignored
	old := *l[0].Load
	old.Version--
	old.Used = structs.Resources{}
	b.Step(now, cv, &Message{Type: MsgLoad, From: "a", Inc: a.Inc(), Load: &old})
	if b.Loads()["a"].Used.CPU != 100 {
		t.Fatal("an older load replaced a newer one")
	}
	// a delta of another incarnation has nothing to complete
	c, _ := New(DefaultConfig("c"), func(string, *Message) {}, NewMemStore(), &nopRunner{})
	c.Step(now, cv, &Message{Type: MsgLoad, From: "a", Inc: a.Inc(), Load: l[0].Load})
	if _, ok := c.Loads()["a"]; ok {
		t.Fatal("a delta without a full load was kept")
	}
	// the stream breaks and comes back: full again
	a.Linked("b", false)
	a.Linked("b", true)
	if l := tick(); len(l) != 1 || l[0].Load.Delta {
		t.Fatal("load after a new stream is not full")
	}
}

type nopRunner struct{}

func (*nopRunner) Start(*structs.Allocation) error { return nil }
func (*nopRunner) Stop(string)                     {}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
