package docker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// fakeDaemon serves handler on a unix socket and returns a client of it
// speaking API 1.41.
func fakeDaemon(t *testing.T, handler http.HandlerFunc) *client.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	cli, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestOpenLogStream: the request reaches the daemon's log endpoint with
// the client's API version and the query; a followed stream is read as it
// is written, and cancelling the context ends a read that waits for more;
// an error answer is returned with the daemon's message, and headers
// beyond the limit are refused.
func TestOpenLogStream(t *testing.T) {
	release := make(chan struct{})
	var gotPath, gotQuery string
	cli := fakeDaemon(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "big") {
			w.Header().Set("X-Big", strings.Repeat("a", maxStreamHeader))
			w.WriteHeader(http.StatusOK)
			return
		}
		if strings.Contains(r.URL.Path, "missing") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"No such container: missing"}`)
			return
		}
		gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		_, _ = io.Copy(w, muxStream(entry{1, time.Time{}, "hello\n"}))
		w.(http.Flusher).Flush()
		// A followed container that prints nothing more: the stream stays
		// open until the client goes.
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := url.Values{"stdout": {"1"}, "follow": {"1"}}
	rc, err := openLogStream(ctx, cli, "c1", q)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(rc, hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 6)
	if _, err := io.ReadFull(rc, body); err != nil || string(body) != "hello\n" {
		t.Fatalf("read %q, %v", body, err)
	}
	if gotPath != "/v1.41/containers/c1/logs" || gotQuery != q.Encode() {
		t.Errorf("request %s?%s, want /v1.41/containers/c1/logs?%s", gotPath, gotQuery, q.Encode())
	}
	readErr := make(chan error, 1)
	go func() { _, err := rc.Read(hdr[:]); readErr <- err }()
	cancel()
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("a read cut by the cancel returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context did not end the read")
	}

	_, err = openLogStream(context.Background(), cli, "missing", q)
	if err == nil || !strings.Contains(err.Error(), "No such container: missing") || !strings.Contains(err.Error(), "404") {
		t.Errorf("error %v, want the daemon's 404 message", err)
	}
	if _, err := openLogStream(context.Background(), cli, "big", q); err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Errorf("oversized headers: error %v, want the limit's", err)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := openLogStream(cancelled, cli, "c1", q); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v, want context.Canceled", err)
	}
}
