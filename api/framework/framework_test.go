package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCluster is the server side of the framework API, scripted: each
// subscription gets SUBSCRIBED then the next script's events, then the
// stream ends (or stays open for the last script).
type fakeCluster struct {
	t *testing.T

	mu         sync.Mutex
	refuse     []int // status codes to answer the next subscriptions with
	scripts    [][]structs.FrameworkEvent
	subscribes []structs.FrameworkInfo
	calls      []structs.FrameworkCall
	streams    []string // stream ID of each call
	open       chan struct{}
}

func (f *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call, err := structs.DecodeFrameworkCall(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	if call.Type != structs.CallTypeSubscribe {
		f.calls = append(f.calls, *call)
		f.streams = append(f.streams, r.Header.Get(api.StreamIDHeader))
		f.mu.Unlock()
		if call.Type == structs.CallTypeAccept {
			_ = json.NewEncoder(w).Encode(structs.AcceptResponse{Tasks: []structs.TaskStatus{{TaskID: "t1", State: structs.TaskStaging}}})
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	n := len(f.subscribes)
	f.subscribes = append(f.subscribes, call.Subscribe.FrameworkInfo)
	if len(f.refuse) > 0 {
		code := f.refuse[0]
		f.refuse = f.refuse[1:]
		f.mu.Unlock()
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(api.ErrorResponse{Error: "refused"})
		return
	}
	var script []structs.FrameworkEvent
	last := len(f.scripts) == 0
	if !last {
		script, f.scripts = f.scripts[0], f.scripts[1:]
		last = len(f.scripts) == 0
	}
	f.mu.Unlock()
	id := call.Subscribe.FrameworkInfo.ID
	if id == "" {
		id = "fw-1"
	}
	stream := "stream-" + string(rune('a'+n))
	w.Header().Set(api.StreamIDHeader, stream)
	w.Header().Set(api.FrameworkIDHeader, id)
	enc := json.NewEncoder(w)
	_ = enc.Encode(structs.FrameworkEvent{Type: structs.EventTypeSubscribed, Subscribed: &structs.EventSubscribed{FrameworkID: id, HeartbeatIntervalSeconds: 15}})
	for _, ev := range script {
		_ = enc.Encode(ev)
	}
	w.(http.Flusher).Flush()
	if last {
		close(f.open)
		<-r.Context().Done()
	}
}

// recorder is a Scheduler that records what it was told and launches a
// task on the first offer.
type recorder struct {
	Base
	mu       sync.Mutex
	ids      []string
	updates  []api.TaskStatus
	launched []api.TaskStatus
}

func (r *recorder) Subscribed(_ context.Context, d *Driver) {
	r.mu.Lock()
	r.ids = append(r.ids, d.FrameworkID())
	r.mu.Unlock()
}

func (r *recorder) Offers(ctx context.Context, d *Driver, offers []api.Offer) {
	st, err := d.Launch(ctx, offers[0], []api.TaskInfo{{TaskID: "t1", Driver: "mock", Resources: api.Resources{CPU: 1, MemoryMB: 1}}}, time.Second)
	if err == nil {
		r.mu.Lock()
		r.launched = append(r.launched, st...)
		r.mu.Unlock()
	}
}

func (r *recorder) Update(_ context.Context, _ *Driver, st api.TaskStatus) {
	r.mu.Lock()
	r.updates = append(r.updates, st)
	r.mu.Unlock()
}

func client(t *testing.T, url string) *api.Client {
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: url, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRunReconnects: Run retries a refused subscription, handles events,
// acknowledges updates, and after the stream breaks subscribes again as
// the same framework, on the new stream.
func TestRunReconnects(t *testing.T) {
	f := &fakeCluster{t: t, open: make(chan struct{}), refuse: []int{http.StatusServiceUnavailable},
		scripts: [][]structs.FrameworkEvent{
			{
				{Type: structs.EventTypeOffers, Offers: &structs.EventOffers{Offers: []structs.Offer{{ID: "o1", AgentID: "n1"}}}},
				{Type: structs.EventTypeUpdate, Update: &structs.EventUpdate{Status: structs.TaskStatus{TaskID: "t1", State: structs.TaskRunning, UUID: "u1"}}},
			},
			{}, // the second stream stays open
		}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Run(ctx, Config{Client: client(t, srv.URL), Name: "q", FailoverTimeout: time.Minute, MinBackoff: time.Millisecond}, s)
	}()
	select {
	case <-f.open:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not subscribe again after the stream ended")
	}
	// The second SUBSCRIBED was written before open closed: wait for the
	// scheduler to see it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		n := len(s.ids)
		s.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second subscription never reached the scheduler")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subscribes) != 3 || f.subscribes[0].ID != "" || f.subscribes[2].ID != "fw-1" || f.subscribes[2].FailoverTimeout != 60 {
		t.Fatalf("subscriptions %+v: want a refused one, a new one, then one as fw-1", f.subscribes)
	}
	var kinds []structs.CallType
	for i, c := range f.calls {
		kinds = append(kinds, c.Type)
		if c.FrameworkID != "fw-1" || f.streams[i] != "stream-b" {
			t.Errorf("call %s as %s on %s, want fw-1 on stream-b", c.Type, c.FrameworkID, f.streams[i])
		}
	}
	if len(kinds) != 2 || kinds[0] != structs.CallTypeAccept || kinds[1] != structs.CallTypeAcknowledge || f.calls[1].Acknowledge.UUID != "u1" {
		t.Fatalf("calls %v: want the launch and the update's acknowledgement", kinds)
	}
	if a := f.calls[0].Accept; a.Operations[0].Launch.TaskInfos[0].AgentID != "n1" || *a.Filters.RefuseSeconds != 1 {
		t.Fatalf("launch %+v: want the task on the offer's node, refuse 1s", a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) != 2 || len(s.updates) != 1 || len(s.launched) != 1 {
		t.Fatalf("scheduler saw ids %v updates %v launched %v", s.ids, s.updates, s.launched)
	}
}

// TestRunFatal: a cluster that refuses the framework for good ends Run
// with ErrFatal instead of retrying forever.
func TestRunFatal(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusConflict, http.StatusGone} {
		f := &fakeCluster{t: t, open: make(chan struct{}), refuse: []int{code}}
		srv := httptest.NewServer(f)
		err := Run(context.Background(), Config{Client: client(t, srv.URL), Name: "q", MinBackoff: time.Millisecond}, Base{})
		srv.Close()
		if !errors.Is(err, ErrFatal) {
			t.Fatalf("status %d: Run returned %v, want ErrFatal", code, err)
		}
	}
}

// canceler stops the run from inside an Update, while more events wait.
type canceler struct {
	Base
	cancel context.CancelFunc
}

func (c *canceler) Update(context.Context, *Driver, api.TaskStatus) {
	c.cancel()
	// Stay busy, as a framework's own work does, so the reader sees the
	// end before Run's loop does.
	time.Sleep(2 * time.Millisecond)
}

// TestRunReturnsWhenStoppedMidStream: Run returns once its context ends,
// even while its reader is handing over events (it used to wait for a
// read error that never came).
func TestRunReturnsWhenStoppedMidStream(t *testing.T) {
	var updates []structs.FrameworkEvent
	for i := range 50 {
		updates = append(updates, structs.FrameworkEvent{Type: structs.EventTypeUpdate,
			Update: &structs.EventUpdate{Status: structs.TaskStatus{TaskID: fmt.Sprint("t", i), State: structs.TaskRunning}}})
	}
	for range 20 {
		f := &fakeCluster{t: t, open: make(chan struct{}), scripts: [][]structs.FrameworkEvent{updates}}
		srv := httptest.NewServer(f)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, Config{Client: client(t, srv.URL), Name: "q"}, &canceler{cancel: cancel}) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		cancel()
		srv.Close()
	}
}
