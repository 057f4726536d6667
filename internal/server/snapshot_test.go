package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// jobIDs lists the jobs the server holds, sorted.
func jobIDs(t *testing.T, c *api.Client) []string {
	t.Helper()
	jobs, _, err := c.ListJobs(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestSnapshotRestoreRefusesIncomplete: a backup cut short anywhere (right
// after its header, at any record boundary, inside a record) or altered is
// refused with a 400 that says what is wrong, and the state is untouched.
func TestSnapshotRestoreRefusesIncomplete(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	for _, name := range []string{"keep-1", "keep-2", "keep-3"} {
		if _, err := c.RegisterJob(bg, mockJob(name, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := c.SnapshotSave(bg, &buf); err != nil {
		t.Fatalf("save: %v", err)
	}
	if _, err := c.RegisterJob(bg, mockJob("later", 0)); err != nil {
		t.Fatal(err)
	}
	want := jobIDs(t, c)
	file := buf.Bytes()
	lines := bytes.SplitAfter(file, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty tail after the last newline

	type tc struct{ name, body, says string }
	var cases []tc
	// Every record boundary: the header alone, then ever more records;
	// the last one stops just before the trailer.
	for n := 1; n < len(lines); n++ {
		cases = append(cases, tc{fmt.Sprintf("first %d of %d lines", n, len(lines)), string(bytes.Join(lines[:n], nil)), "incomplete"})
	}
	mid := len(lines[0]) + len(lines[1])/2
	altered := bytes.Replace(file, []byte(`"keep-2"`), []byte(`"keep-X"`), 1)
	cases = append(cases,
		tc{"cut inside a record", string(file[:mid]), "incomplete"},
		tc{"a name altered", string(altered), "checksum"},
		tc{"a record dropped", string(bytes.Join(slices.Delete(slices.Clone(lines), 2, 3), nil)), "records"},
		tc{"format 1", `{"gantry_snapshot":1,"index":3}` + "\n" + string(bytes.Join(lines[1:len(lines)-1], nil)), "format 1"},
		tc{"empty", "", "empty"},
		tc{"not a snapshot", "hello\n", "not a gantry snapshot"},
	)
	for _, b := range cases {
		_, err := c.SnapshotRestore(bg, strings.NewReader(b.body))
		if !isStatus(err, 400) || !strings.Contains(err.Error(), b.says) {
			t.Errorf("%s: %v, want 400 saying %q", b.name, err, b.says)
		}
		if got := jobIDs(t, c); !slices.Equal(got, want) {
			t.Fatalf("%s: state changed by a refused restore: jobs %v, want %v", b.name, got, want)
		}
	}
	// The whole file restores.
	if _, err := c.SnapshotRestore(bg, bytes.NewReader(file)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := jobIDs(t, c); !slices.Equal(got, []string{"keep-1", "keep-2", "keep-3"}) {
		t.Fatalf("jobs after restore %v", got)
	}
}

// dirBytes is the size of the files in dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// uploadRaw sends a restore over its own connection and reads the answer
// while the body is still being written, as a client whose upload is
// refused part-way sees it (an http.Client may report its failed write
// instead). length < 0 sends the body chunked. If hold is set, the body
// is not finished: the connection stays open until hold is closed.
func uploadRaw(t *testing.T, addr string, length int64, body io.Reader, hold <-chan struct{}) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "PUT /v1/operator/snapshot HTTP/1.1\r\nHost: gantry\r\nContent-Type: application/octet-stream\r\n"
	if length >= 0 {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", length)
	} else {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		var w io.Writer = conn
		if length < 0 {
			w = httputil.NewChunkedWriter(conn)
		}
		if _, err := io.Copy(w, body); err != nil {
			return // refused part-way: the server stopped reading
		}
		if hold != nil {
			<-hold
			conn.Close() // the client goes away mid-upload
			return
		}
		if length < 0 {
			_, _ = io.WriteString(conn, "0\r\n\r\n")
		}
	}()
	defer func() { <-sent }()
	// A bound only to fail rather than hang where the server never
	// answers; nothing is asserted about how fast it does.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if hold != nil {
			return 0, err.Error()
		}
		t.Fatalf("no answer to the upload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// backupLines is a reader of a backup header then filler records up to n
// bytes: a valid-looking start of a large upload.
func backupLines(n int64) io.Reader {
	rec := `{"index":{"key":"filler","value":1}}` + "\n"
	head := `{"gantry_snapshot":2,"index":1}` + "\n"
	return io.LimitReader(io.MultiReader(strings.NewReader(head), &repeatReader{s: rec}), n)
}

type repeatReader struct {
	s   string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// TestSnapshotUploadLimits: an upload is bounded by size (413, before a
// byte is read when the size is declared) and by the free space of the
// spool's file system, which must keep the reserve free (507 before
// spooling when the declared size would not fit, and as soon as a chunked
// upload would not); the spool is in <DataDir>/spool, never the Raft
// directory, and is removed; the state is untouched.
func TestSnapshotUploadLimits(t *testing.T) {
	const reserve = 64 << 20
	cfg := testConfig(t)
	cfg.MaxSnapshotUpload = 32 << 20
	cfg.DiskReserve = reserve
	spool := filepath.Join(cfg.DataDir, "spool")
	// A disk with the reserve plus headroom free, less what is spooled.
	var headroom atomic.Int64
	s, c := startServerWith(t, cfg, func(s *Server) {
		s.diskFree = func(string) (uint64, error) {
			return uint64(reserve + headroom.Load() - dirBytes(spool)), nil
		}
	})
	if _, err := c.RegisterJob(bg, mockJob("keep", 0)); err != nil {
		t.Fatal(err)
	}
	want := jobIDs(t, c)
	addr := s.HTTPAddr()

	cases := []struct {
		name     string
		headroom int64
		length   int64 // declared; -1 chunked
		size     int64 // sent
		code     int
		says     string
	}{
		{"declared over the size limit", 1 << 40, 33 << 20, 0, http.StatusRequestEntityTooLarge, "larger than the limit"},
		{"chunked over the size limit", 1 << 40, -1, 33 << 20, http.StatusRequestEntityTooLarge, "larger than the limit"},
		{"declared over the free space", 6 << 20, 8 << 20, 8 << 20, http.StatusInsufficientStorage, "not enough free space"},
		{"chunked past the free space", 6 << 20, -1, 16 << 20, http.StatusInsufficientStorage, "not enough free space"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headroom.Store(tc.headroom)
			code, body := uploadRaw(t, addr, tc.length, backupLines(tc.size), nil)
			if code != tc.code || !strings.Contains(body, tc.says) {
				t.Errorf("%d %s, want %d saying %q", code, body, tc.code, tc.says)
			}
			if n := dirBytes(spool); n != 0 {
				t.Errorf("%d bytes left in the spool", n)
			}
			if got := jobIDs(t, c); !slices.Equal(got, want) {
				t.Errorf("state changed: jobs %v, want %v", got, want)
			}
		})
	}

	// An upload in progress is spooled in <DataDir>/spool, nowhere else,
	// and its file is removed when the client goes away.
	t.Run("spool dir", func(t *testing.T) {
		headroom.Store(1 << 40)
		hold := make(chan struct{})
		done := make(chan struct{})
		release := sync.OnceFunc(func() {
			close(hold)
			<-done
		})
		defer release()
		go func() {
			defer close(done)
			uploadRaw(t, addr, -1, backupLines(2<<20), hold)
		}()
		waitFor(t, 30*time.Second, "the open upload in the spool", func() (bool, string) {
			var where []string
			for _, dir := range []string{spool, cfg.DataDir, filepath.Join(cfg.DataDir, raftDir)} {
				m, _ := filepath.Glob(filepath.Join(dir, "restore-*"))
				where = append(where, m...)
			}
			n := dirBytes(spool)
			return n >= 1<<20 && len(where) == 1, fmt.Sprintf("%d bytes in %s; spool files %v", n, spool, where)
		})
		release()
		waitFor(t, 30*time.Second, "the spool to be emptied", func() (bool, string) {
			n := dirBytes(spool)
			return n == 0, fmt.Sprintf("%d bytes in %s", n, spool)
		})
	})
}

// TestSnapshotSaveRefusesCutStream: the client refuses a download that
// ends before the trailer (a server that failed mid-stream).
func TestSnapshotSaveRefusesCutStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"gantry_snapshot":2,"index":3}`+"\n"+`{"job":{"id":"a"}}`+"\n")
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, err := api.NewClient(api.Config{Address: srv.URL, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.SnapshotSave(bg, &buf); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("save of a cut stream: %v, want an error saying it is incomplete", err)
	}
}
