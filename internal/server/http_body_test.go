package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// TestSlowBodyIsCut: a client sending its body at a trickle is answered
// 408 once the body timeout passes, instead of holding the request open
// for as long as it likes.
func TestSlowBodyIsCut(t *testing.T) {
	cfg := testConfig(t)
	cfg.BodyTimeout = 200 * time.Millisecond
	s, _ := startServer(t, cfg)
	conn, err := net.Dial("tcp", s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"job":{"name":"slow","driver":"mock","count":1,"resources":{"cpu":100,"memory_mb":64}}}`
	fmt.Fprintf(conn, "PUT /v1/jobs HTTP/1.1\r\nHost: gantry\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-trickled
	}()
	// The bound only turns a server that never answers into a failure;
	// the timeout under test is far shorter.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body trickled in: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "arrived in") {
		t.Fatalf("slow body: %d %s, want 408", resp.StatusCode, b)
	}
}

// TestBodyTimeoutSparesLongPolls: the body timeout covers the body only.
// A watch (a long poll sent with a body) and a blocking query sent on a
// connection that just served a backup download both wait far longer than
// the timeout and answer normally.
func TestBodyTimeoutSparesLongPolls(t *testing.T) {
	cfg := testConfig(t)
	cfg.BodyTimeout = 100 * time.Millisecond
	const wait = time.Second // ten body timeouts
	// One connection, so the blocking query reuses the download's.
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	s, c0 := startServer(t, cfg)
	c, err := api.NewClient(api.Config{Address: s.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c0.RegisterNode(bg, fakeNode("n1", 1000, 1000)); err != nil {
		t.Fatal(err)
	}

	// The first watch answers at once with the node's list and index.
	req := &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{"n1": {}}}
	first := <-pollWatch(bg, c, req, wait)
	if first.err != nil {
		t.Fatal(first.err)
	}
	// Nothing changes: the next one waits out wait, then answers.
	req.Nodes["n1"] = api.NodeWatchState{Index: first.nodes["n1"].Index, Known: len(first.nodes["n1"].Allocs)}
	if ans := <-pollWatch(bg, c, req, wait); ans.err != nil {
		t.Fatalf("watch waiting past the body timeout: %v", ans.err)
	}

	if _, err := c.SnapshotSave(bg, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, meta, err := c.ListJobs(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ListJobs(bg, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: wait}); err != nil {
		t.Fatalf("blocking query after a download on the same connection: %v", err)
	}
}

// TestDownloadDeadline: a response written through a deadlineWriter to a
// client that stopped reading fails once the client has accepted nothing
// for the timeout, instead of blocking for ever (a backup download holds a
// snapshot of the whole state while it runs).
func TestDownloadDeadline(t *testing.T) {
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := newDeadlineWriter(w, 100*time.Millisecond)
		chunk := make([]byte, 64<<10)
		var err error
		// Far more than socket buffers hold.
		for i := 0; i < 1024 && err == nil; i++ {
			_, err = dw.Write(chunk)
		}
		result <- err
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read nothing. The bound only turns a writer that never gives up
	// into a failure.
	select {
	case err := <-result:
		if !isTimeout(err) {
			t.Fatalf("write to a client that stopped reading: %v, want a timeout", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the download still blocks on a client that stopped reading")
	}
}
