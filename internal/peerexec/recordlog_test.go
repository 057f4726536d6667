package peerexec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logLines collects a record log's notices.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (ll *logLines) logf(format string, args ...any) {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	ll.lines = append(ll.lines, fmt.Sprintf(format, args...))
}

func (ll *logLines) String() string {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return strings.Join(ll.lines, "\n")
}

type logOp struct {
	kind    byte
	id, arg string
}

func startOp(id, payload string) logOp { return logOp{recStart, id, payload} }
func endOp(id string) logOp            { return logOp{recEnd, id, ""} }

func applyOps(t *testing.T, l *recordLog, ops []logOp) {
	t.Helper()
	for _, op := range ops {
		var err error
		if op.kind == recStart {
			err = l.start(op.id, []byte(op.arg))
		} else {
			err = l.end(op.id)
		}
		if err != nil {
			t.Fatalf("%c %s: %v", "?se"[op.kind], op.id, err)
		}
	}
}

// loadAll reopens the log at path: its live records as "id=payload"
// in file order, the notices, the corruption report.
func loadAll(t *testing.T, path string) ([]string, string, error) {
	t.Helper()
	ll := &logLines{}
	l := newRecordLog(path, ll.logf)
	defer func() { _ = l.close() }()
	recs, err := l.load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.id+"="+string(r.payload))
	}
	return got, ll.String(), l.takeReport()
}

// TestRecordLog: records appended, the log reopened after damage of
// each kind a crash or a bad disk leaves: what is live, what is said,
// and that the repaired log takes new records.
func TestRecordLog(t *testing.T) {
	ops := []logOp{startOp("a", "pa"), startOp("b", "pb"), startOp("c", "pc"), endOp("b"),
		startOp("c", "pc2"), endOp("never-started")}
	const lastLen = recordHeaderLen + 2 + 1 + 3 // start c pc2
	first := int64(len(recordLogMagic))
	mutate := func(f func(b []byte) []byte) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	cut := func(n int) func(*testing.T, string) {
		return mutate(func(b []byte) []byte { return b[:len(b)-n] })
	}
	flip := func(at func(size int) int) func(*testing.T, string) {
		return mutate(func(b []byte) []byte { b[at(len(b))] ^= 0x40; return b })
	}
	cases := []struct {
		name       string
		damage     func(*testing.T, string)
		want       []string
		wantLine   string // in the notices ("" none)
		wantReport string // in the corruption report ("" none)
	}{
		{name: "intact", want: []string{"a=pa", "c=pc2"}},
		{name: "cut inside the last body", damage: cut(3), want: []string{"a=pa", "c=pc"}, wantLine: "record cut short"},
		{name: "cut inside the last header", damage: cut(lastLen - 4), want: []string{"a=pa", "c=pc"}, wantLine: "record header cut short"},
		{name: "cut at a record's end", damage: cut(lastLen), want: []string{"a=pa", "c=pc"}},
		{name: "last record fails its checksum", damage: flip(func(n int) int { return n - 1 }), want: []string{"a=pa", "c=pc"},
			wantLine: "last record fails its checksum"},
		{name: "zeros after the records", damage: mutate(func(b []byte) []byte { return append(b, make([]byte, 5000)...) }),
			want: []string{"a=pa", "c=pc2"}, wantLine: "zeros to the end"},
		{name: "header cut short", damage: mutate(func(b []byte) []byte { return b[:5] }), wantLine: "header cut short"},
		{name: "corrupt first record", damage: flip(func(int) int { return int(first) + recordHeaderLen + 2 }),
			wantReport: fmt.Sprintf("corrupt record at offset %d", first)},
		{name: "corrupt length in the middle", damage: mutate(func(b []byte) []byte { b[first+3] = 0xff; return b }),
			wantReport: "record length"},
		{name: "not a record log", damage: mutate(func(b []byte) []byte { b[0] = 'X'; return b }), wantReport: "bad header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), recordLogFile)
			l := newRecordLog(path, t.Logf)
			applyOps(t, l, ops)
			if err := l.close(); err != nil {
				t.Fatal(err)
			}
			if err := l.start("z", []byte("late")); !errors.Is(err, errLogClosed) {
				t.Fatalf("start after close: %v, want %v", err, errLogClosed)
			}
			if tc.damage != nil {
				tc.damage(t, path)
			}
			got, lines, report := loadAll(t, path)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("live %q, want %q", got, tc.want)
			}
			if (tc.wantLine == "") != (lines == "") || !strings.Contains(lines, tc.wantLine) {
				t.Fatalf("notices %q, want one with %q", lines, tc.wantLine)
			}
			if tc.wantReport == "" {
				if report != nil {
					t.Fatalf("report %v, want none", report)
				}
			} else {
				if report == nil || !strings.Contains(report.Error(), tc.wantReport) {
					t.Fatalf("report %v, want one with %q", report, tc.wantReport)
				}
				if _, err := os.Stat(path + ".corrupt"); err != nil {
					t.Fatalf("the corrupt log was not kept aside: %v", err)
				}
			}
			// repaired: it takes records, and reads back clean
			l = newRecordLog(path, t.Logf)
			applyOps(t, l, []logOp{startOp("d", "pd")})
			_ = l.close()
			got, lines, report = loadAll(t, path)
			if want := append(slices.Clone(tc.want), "d=pd"); !slices.Equal(got, want) || report != nil || lines != "" {
				t.Fatalf("after repair: live %q (want %q), report %v, notices %q", got, want, report, lines)
			}
		})
	}
}

// TestRecordLogCompaction: once dead records outweigh live ones the file
// is rewritten with the live ones only; reopened, it holds the same.
func TestRecordLogCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, recordLogFile)
	l := newRecordLog(path, t.Logf)
	l.compactMin = 4096
	payload := strings.Repeat("x", 100)
	var written int64
	var want []string
	for i := range 100 {
		id := fmt.Sprintf("t%03d", i)
		applyOps(t, l, []logOp{startOp(id, payload)})
		written += recordHeaderLen + 2 + int64(len(id)) + int64(len(payload))
	}
	for i := range 100 {
		id := fmt.Sprintf("t%03d", i)
		if i%5 == 0 {
			want = append(want, id+"="+payload)
			continue
		}
		applyOps(t, l, []logOp{endOp(id)})
		written += recordHeaderLen + 2 + int64(len(id))
	}
	if l.compactions == 0 {
		t.Fatalf("no compaction: %d bytes, %d live", l.size, l.liveBytes)
	}
	if l.size >= written {
		t.Fatalf("file of %d bytes after compaction, %d written", l.size, written)
	}
	_ = l.close()
	got, lines, report := loadAll(t, path)
	if !slices.Equal(got, want) || report != nil || lines != "" {
		t.Fatalf("live %q (want %q), report %v, notices %q", got, want, report, lines)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("compaction left its temporary file: %v", err)
	}
}

// TestRecordLogLimit: a start record that would take the file past its
// limit is refused (after a compaction that could not make room); end
// records are still written, and the next compaction frees their room.
func TestRecordLogLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), recordLogFile)
	l := newRecordLog(path, t.Logf)
	rec := int64(recordHeaderLen + 2 + 1 + 10)
	l.limit = int64(len(recordLogMagic)) + 3*rec
	p := []byte("0123456789")
	for _, id := range []string{"a", "b", "c"} {
		if err := l.start(id, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.start("d", p); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("start past the limit: %v, want full", err)
	}
	if err := l.end("a"); err != nil {
		t.Fatalf("end past the limit: %v", err)
	}
	if err := l.start("d", p); err != nil {
		t.Fatalf("start after an end made room: %v", err)
	}
	if l.compactions != 1 || l.size > l.limit {
		t.Fatalf("%d compactions, %d bytes (limit %d)", l.compactions, l.size, l.limit)
	}
	if err := l.start("toolarge", make([]byte, maxTaskRecord+1)); err == nil {
		t.Fatal("a record larger than maxTaskRecord was taken")
	}
	_ = l.close()
	got, _, _ := loadAll(t, path)
	if want := []string{"b=" + string(p), "c=" + string(p), "d=" + string(p)}; !slices.Equal(got, want) {
		t.Fatalf("live %q, want %q", got, want)
	}
}

// TestRecordLogGroupCommit: records appended while a write is in flight
// share the next write.
func TestRecordLogGroupCommit(t *testing.T) {
	l := newRecordLog(filepath.Join(t.TempDir(), recordLogFile), t.Logf)
	defer func() { _ = l.close() }()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l.beforeWrite = func() { once.Do(func() { close(entered); <-release }) }
	const n = 9
	errs := make(chan error, n)
	go func() { errs <- l.start("a0", []byte("p")) }()
	<-entered // a0's write is in flight
	for i := 1; i < n; i++ {
		go func() { errs <- l.start(fmt.Sprintf("a%d", i), []byte("p")) }()
	}
	waitUntil(t, "the next batch filled", 5*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.cur.entries) == n-1
	})
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writes != 2 || len(l.live) != n {
		t.Fatalf("%d writes for %d records (want 2), %d live", l.writes, n, len(l.live))
	}
}

// TestRecordLogWriteFailure: a write that fails is an error to every
// appender of its batch, not a crash.
func TestRecordLogWriteFailure(t *testing.T) {
	l := newRecordLog(filepath.Join(t.TempDir(), recordLogFile), t.Logf)
	if err := l.start("a", []byte("p")); err != nil {
		t.Fatal(err)
	}
	_ = l.f.Close() // the disk goes away under the log
	for _, id := range []string{"b", "c"} {
		if err := l.start(id, []byte("p")); err == nil {
			t.Fatalf("start %s on a closed file: no error", id)
		}
	}
	if err := l.end("a"); err == nil {
		t.Fatal("end on a closed file: no error")
	}
}

const recordLogHelperEnv = "GANTRY_PEEREXEC_RECORDLOG_HELPER"

// recordLogHelper appends records from 8 goroutines, printing each one
// once it is written ("s ID", "e ID"), until killed (or 60 s).
func recordLogHelper(dir string) {
	l := newRecordLog(filepath.Join(dir, recordLogFile), func(string, ...any) {})
	l.compactMin = 64 << 10 // compactions while it is killed
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.WriteString(s + "\n")
	}
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				if l.start(id, killPayload(id)) != nil {
					return
				}
				say("s " + id)
				if i%2 == 1 {
					prev := fmt.Sprintf("w%d-%d", w, i-1)
					if l.end(prev) != nil {
						return
					}
					say("e " + prev)
				}
			}
		}()
	}
	wg.Wait()
}

func killPayload(id string) []byte {
	return []byte(`{"id":"` + id + `","pad":"` + strings.Repeat("p", 150) + `"}`)
}

// TestRecordLogKill9: a process appending records from several
// goroutines is killed with SIGKILL; reopened, the log holds every
// record the process was told was written (and no ended one).
func TestRecordLogKill9(t *testing.T) {
	if dir := os.Getenv(recordLogHelperEnv); dir != "" {
		recordLogHelper(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs and kills a helper process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordLogKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), recordLogHelperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started, ended := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(out)
	for n := 0; sc.Scan(); n++ {
		if kind, id, ok := strings.Cut(sc.Text(), " "); ok && kind == "s" {
			started[id] = true
		} else if ok && kind == "e" {
			ended[id] = true
		}
		if n == 5000 {
			_ = cmd.Process.Kill()
		}
	}
	_ = cmd.Wait()
	if len(started) < 2000 {
		t.Fatalf("the helper wrote %d records before it ended: %s", len(started), stderr.String())
	}
	ll := &logLines{}
	l := newRecordLog(filepath.Join(dir, recordLogFile), ll.logf)
	defer func() { _ = l.close() }()
	recs, err := l.load()
	if err != nil || l.takeReport() != nil {
		t.Fatalf("load: %v; report %v", err, l.takeReport())
	}
	live := map[string]bool{}
	for _, r := range recs {
		if !bytes.Equal(r.payload, killPayload(r.id)) {
			t.Fatalf("record %s: payload %q", r.id, r.payload)
		}
		live[r.id] = true
	}
	for id := range ended {
		if live[id] {
			t.Fatalf("%s: live after its end was written", id)
		}
	}
	for id := range started {
		// w-i (i even) is ended only after w-(i+1) was written: the
		// end of an acknowledged start may be in without its
		// acknowledgement only then
		var w, i int
		if _, err := fmt.Sscanf(id, "w%d-%d", &w, &i); err != nil {
			t.Fatal(err)
		}
		mayEnd := i%2 == 0 && started[fmt.Sprintf("w%d-%d", w, i+1)]
		if !ended[id] && !mayEnd && !live[id] {
			t.Fatalf("%s: written, never ended, not in the log", id)
		}
	}
	t.Logf("%d starts and %d ends acknowledged before the kill; %d live; notices: %q", len(started), len(ended), len(live), ll.String())
}

// FuzzRecordLog: the record decoder and the file scan take any bytes
// without panicking; a decoded record encodes back to the same bytes; a
// scan's live records decode as start records of their IDs.
func FuzzRecordLog(f *testing.F) {
	f.Add(appendRecord(nil, recStart, "a", []byte(`{"alloc":{}}`)))
	f.Add(appendRecord(appendRecord(nil, recStart, "a", []byte("x")), recEnd, "a", nil))
	f.Add(appendRecord(nil, recEnd, "b", nil)[:9])
	f.Add(append(appendRecord(nil, recStart, "c", []byte("y")), make([]byte, 20)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, id, payload, size, err := decodeRecord(b)
		if err == nil {
			if got := appendRecord(nil, kind, id, payload); !bytes.Equal(got, b[:size]) {
				t.Fatalf("re-encoded %x, decoded from %x", got, b[:size])
			}
		}
		file := append([]byte(recordLogMagic), b...)
		res, err := scanRecordLog(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			var c *errCorruptLog
			if !errors.As(err, &c) {
				t.Fatalf("scan of bytes in memory: %v", err)
			}
			return
		}
		if res.end < int64(len(recordLogMagic)) || res.end > int64(len(file)) || (res.torn == "") != (res.end == int64(len(file))) {
			t.Fatalf("end %d of %d, torn %q", res.end, len(file), res.torn)
		}
		var sum int64
		for id, s := range res.live {
			k, got, _, n, err := decodeRecord(file[s.off:])
			if err != nil || k != recStart || got != id || int64(n) != s.n {
				t.Fatalf("live %s at %d: kind %d, id %q, size %d, %v", id, s.off, k, got, n, err)
			}
			sum += s.n
		}
		if sum != res.liveBytes {
			t.Fatalf("live bytes %d, spans sum %d", res.liveBytes, sum)
		}
	})
}
