package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestAcceptsFrames(t *testing.T) {
	tests := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"application/json"}, false},
		{[]string{FrameContentType}, true},
		{[]string{"application/json", "Application/VND.gantry.frame"}, true},
		{[]string{"text/plain, " + FrameContentType + ";q=0.8"}, true},
		{[]string{FrameContentType + "; q=0"}, false},
		{[]string{FrameContentType + ";q=nope"}, false},
		{[]string{"*/*"}, false}, // JSON stays the default
		{[]string{"application/vnd.gantry.framework"}, false},
	}
	for _, tt := range tests {
		if got := AcceptsFrames(tt.accept); got != tt.want {
			t.Errorf("AcceptsFrames(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

const uuid1 = "4f1d2c3b-0a1b-4a5b-8c6d-0123456789ab"

func testReports() map[string][]*AllocClientUpdate {
	return map[string][]*AllocClientUpdate{
		"9b2c7e3a-0000-4000-8000-000000000001": {
			{ID: uuid1, ClientStatus: structs.AllocClientRunning, TaskState: structs.TaskState{State: structs.TaskStateRunning, StartedAt: 1_700_000_000_000_000_000}},
			{ID: "short", ClientStatus: structs.AllocClientFailed, ClientDescription: "exit 1",
				TaskState: structs.TaskState{State: structs.TaskStateDead, Failed: true, FinishedAt: 1_700_000_000_100_000_000}},
		},
		"n2": {},
		"n3": nil,
	}
}

func TestNodesReportsRoundTrip(t *testing.T) {
	for _, in := range []map[string][]*AllocClientUpdate{testReports(), {}} {
		got, err := DecodeNodesReports(EncodeNodesReports(in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Nodes, in) {
			t.Fatalf("round trip: got %+v, want %+v", got.Nodes, in)
		}
	}
	// A node twice, or a time, is refused (the server stamps times).
	twice := structs.EncodeReportBatch(&structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{{NodeID: "a"}, {NodeID: "a"}}})
	timed := structs.EncodeReportBatch(&structs.AllocClientUpdateBatchRequest{Nodes: []structs.AllocClientUpdateRequest{{NodeID: "a", Time: 5}}})
	for body, want := range map[string]string{string(twice): "appears twice", string(timed): "time must be 0", "\x01": "decoding report batch"} {
		if _, err := DecodeNodesReports([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decoding %x: %v, want an error containing %q", body, err, want)
		}
	}
}

// FuzzDecodeNodesReports checks that decoding any body never panics and
// that what decodes re-encodes to the same batch.
func FuzzDecodeNodesReports(f *testing.F) {
	f.Add(EncodeNodesReports(testReports()))
	f.Add(EncodeNodesReports(nil))
	f.Add([]byte{1, 1, 1, 'a', 2, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeNodesReports(data)
		if err != nil {
			return
		}
		again, err := DecodeNodesReports(EncodeNodesReports(req.Nodes))
		if err != nil {
			t.Fatalf("decoding a re-encoded batch: %v", err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("decode(encode(decode(x))) differs from decode(x)")
		}
	})
}

// frameServer answers watches with the given frames in binary (or JSON,
// when the request does not accept binary), and batched reports as an
// old server would when old is set: 400 to a binary body.
func frameServer(t *testing.T, frames []*NodeWatchFrame, old bool, reports *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/nodes/allocations/watch":
			if AcceptsFrames(r.Header.Values("Accept")) && !old {
				w.Header().Set("Content-Type", FrameContentType)
				for _, f := range frames {
					b, err := structs.EncodeNodeWatchFrame(f)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = w.Write(binary.AppendUvarint(nil, uint64(len(b))))
					_, _ = w.Write(b)
				}
				return
			}
			w.Header().Set("Content-Type", "application/x-ndjson")
			for _, f := range frames {
				_ = json.NewEncoder(w).Encode(f)
			}
		case "/v1/nodes/allocations":
			body, _ := io.ReadAll(r.Body)
			var req *NodesAllocUpdateRequest
			if r.Header.Get("Content-Type") == FrameContentType && !old {
				dec, err := DecodeNodesReports(body)
				if err != nil {
					http.Error(w, `{"error":"bad"}`, http.StatusBadRequest)
					return
				}
				req = dec
			} else if err := json.Unmarshal(body, &req); err != nil {
				http.Error(w, `{"error":"invalid request body"}`, http.StatusBadRequest)
				return
			}
			reports.Add(int32(len(req.Nodes)))
			_, _ = w.Write([]byte(`{"index":7}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNodeWireNegotiation checks that a client reads binary frames from a
// server that speaks them and JSON from one that does not, and that
// batched reports fall back to JSON, once, for a server that refuses
// binary.
func TestNodeWireNegotiation(t *testing.T) {
	job := &Job{ID: "web", Name: "web", Version: 1}
	alloc := &Allocation{ID: uuid1, JobID: "web", Name: "web[0]", NodeID: "n1", DesiredStatus: structs.AllocDesiredRun}
	frames := []*NodeWatchFrame{
		{Index: 5, Time: 9, Nodes: map[string]*NodeAllocDelta{"n1": {Index: 5, Full: true}, "n2": {NotFound: true}}},
		{Index: 6, Jobs: map[int]*Job{1: job}, Nodes: map[string]*NodeAllocDelta{"n1": {Index: 6, Allocs: []*WatchAlloc{{Allocation: alloc, JobRef: 1}}}}},
	}
	for _, tc := range []struct {
		name             string
		old, jsonWire    bool
		wantBinaryFrames bool
	}{
		{"binary", false, false, true},
		{"old server", true, false, false},
		{"json client", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reports atomic.Int32
			srv := frameServer(t, frames, tc.old, &reports)
			c, err := NewClient(Config{Address: srv.URL, NodeWireJSON: tc.jsonWire})
			if err != nil {
				t.Fatal(err)
			}
			w, err := c.WatchNodeAllocations(context.Background(), &NodeWatchRequest{Nodes: map[string]NodeWatchState{"n1": {}}}, true, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if w.Binary != tc.wantBinaryFrames {
				t.Fatalf("binary answer %v, want %v", w.Binary, tc.wantBinaryFrames)
			}
			idx, nodes, err := w.Next()
			if err != nil || idx != 5 || w.FrameTime != 9 || !nodes["n1"].Full || !nodes["n2"].NotFound {
				t.Fatalf("first frame: %d %+v %v", idx, nodes, err)
			}
			idx, nodes, err = w.Next()
			if err != nil || idx != 6 || len(nodes["n1"].Allocs) != 1 || !reflect.DeepEqual(nodes["n1"].Allocs[0].Job, job) {
				t.Fatalf("second frame: %d %+v %v", idx, nodes, err)
			}
			if _, _, err := w.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
			for range 2 {
				if _, err := c.UpdateNodesAllocations(context.Background(), testReports()); err != nil {
					t.Fatal(err)
				}
			}
			if got := reports.Load(); got != 6 {
				t.Fatalf("server applied %d nodes' reports, want 6", got)
			}
			want := int32(reportBinary)
			switch {
			case tc.jsonWire:
				want = reportUnknown
			case tc.old:
				want = reportJSON
			}
			if got := c.reportWire.Load(); got != want {
				t.Fatalf("report wire %d, want %d", got, want)
			}
		})
	}
}

func TestNodeWatchBadFrames(t *testing.T) {
	good, err := structs.EncodeNodeWatchFrame(&NodeWatchFrame{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"too large", binary.AppendUvarint(nil, MaxFrameBytes+1), "larger than"},
		{"truncated", append(binary.AppendUvarint(nil, uint64(len(good)+1)), good...), "reading a frame"},
		{"bad length", []byte{0xff}, "frame's length"},
		{"bad frame", append(binary.AppendUvarint(nil, 1), 9), "unknown encoding version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &NodeWatch{body: io.NopCloser(nil), Binary: true, br: bufioReader(tt.body), jobs: map[int]*Job{}}
			if _, _, err := w.Next(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
