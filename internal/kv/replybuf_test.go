package kv

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReplyBufResize checks the cron's visit of a reply buffer against
// Redis 7.0's clientsCronResizeOutputBuffer, one visit per case.
func TestReplyBufResize(t *testing.T) {
	const now = 100_000 // ms
	cases := []struct {
		name                 string
		size, peak           int
		lastReset            int64
		resetMs              int64 // DEBUG REPLYBUFFER PEAK-RESET-TIME; -1: never
		off                  bool  // DEBUG REPLYBUFFER RESIZING 0
		held                 int   // unsent reply bytes
		wantSize, wantPeak   int
		wantShrink, wantGrow int64
	}{
		{"new client: the first visit resets the peak", replyChunk, replyChunk, 0, 5000, false, 0, replyChunk, 0, 0, 0},
		{"idle: shrinks to 1 KB", replyChunk, 0, now, 5000, false, 0, 1024, 0, 1, 0},
		{"peak under half: peak+1, rounded as jemalloc", replyChunk, 1100, now, 5000, false, 0, 1280, 1100, 1, 0},
		{"peak under half of 4 KB", 4096, 2000, now, 5000, false, 0, 2048, 2000, 1, 0},
		{"1 KB does not shrink", 1024, 0, now, 5000, false, 0, 1024, 0, 0, 0},
		{"full: doubles", 1024, 1024, now, 5000, false, 0, 2048, 1024, 0, 1},
		{"full 8 KB: 16 KB", 8192, 8192, now, 5000, false, 0, replyChunk, 8192, 0, 1},
		{"full 16 KB: stays", replyChunk, replyChunk, now, 5000, false, 0, replyChunk, replyChunk, 0, 0},
		{"full 10 KB: 16 KB at most", 10240, 10240, now, 5000, false, 0, replyChunk, 10240, 0, 1},
		{"peak over half: stays", 2048, 1500, now, 5000, false, 0, 2048, 1500, 0, 0},
		{"reset time passed: peak is what is held", 2048, 1500, now - 5000, 5000, false, 700, 2048, 700, 0, 0},
		{"reset time not passed", 2048, 1500, now - 4999, 5000, false, 700, 2048, 1500, 0, 0},
		{"resize decided on the old peak, then reset", 1024, 1024, now - 5000, 5000, false, 0, 2048, 0, 0, 1},
		{"held beyond the buffer counts its size", 1024, 1024, now - 5000, 5000, false, 5000, 2048, 1024, 0, 1},
		{"never reset", 4096, 100, 0, -1, false, 0, 1024, 100, 1, 0},
		{"resizing off", replyChunk, 0, 0, 5000, true, 0, replyChunk, 0, 0, 0},
		{"a client without a buffer gets a new one's", 0, 0, 0, 5000, false, 0, replyChunk, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rb replyBufs
			rb.peakResetMs.Store(tc.resetMs)
			rb.resizeOff.Store(tc.off)
			r := replyBuf{size: tc.size, peak: tc.peak, lastReset: tc.lastReset}
			r.resize(&rb, now, tc.held)
			if r.size != tc.wantSize || r.peak != tc.wantPeak {
				t.Errorf("size %d peak %d, want %d %d", r.size, r.peak, tc.wantSize, tc.wantPeak)
			}
			if int(r.sharedSize.Load()) != r.size && tc.wantSize != tc.size {
				t.Errorf("published size %d, want %d", r.sharedSize.Load(), r.size)
			}
			if rb.shrinks.Load() != tc.wantShrink || rb.expands.Load() != tc.wantGrow {
				t.Errorf("shrinks %d expands %d, want %d %d", rb.shrinks.Load(), rb.expands.Load(), tc.wantShrink, tc.wantGrow)
			}
		})
	}
}

func TestJemallocSize(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{1, 16}, {17, 32}, {100, 112}, {129, 160}, {1024, 1024}, {1025, 1280}, {1101, 1280},
		{1281, 1536}, {2001, 2048}, {2049, 2560}, {9000, 10240}, {16384, 16384},
	} {
		if got := jemallocSize(tc.n); got != tc.want {
			t.Errorf("jemallocSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// TestReplyFields: obl, oll and omem of unsent replies, as Redis's
// buffer and 16 KB reply blocks hold them.
func TestReplyFields(t *testing.T) {
	for _, tc := range []struct{ unsent, rbs, obl, oll, omem int }{
		{0, 16384, 0, 0, 0},
		{500, 1024, 500, 0, 0},
		{1024, 1024, 1024, 0, 0},
		{1025, 1024, 1024, 1, 1},
		{1024 + 16384, 1024, 1024, 1, 16384},
		{1024 + 16385, 1024, 1024, 2, 16385},
	} {
		obl, oll, omem := replyFields(tc.unsent, tc.rbs)
		if obl != tc.obl || oll != tc.oll || omem != tc.omem {
			t.Errorf("replyFields(%d, %d) = %d %d %d, want %d %d %d", tc.unsent, tc.rbs, obl, oll, omem, tc.obl, tc.oll, tc.omem)
		}
	}
}

// TestCronRepliesPace: each cron call visits n/10 of a loop's n clients,
// at least min(n, 5), going on from where the last call stopped.
func TestCronRepliesPace(t *testing.T) {
	for _, tc := range []struct{ n, perCall int }{{1, 1}, {3, 3}, {5, 5}, {20, 5}, {49, 5}, {200, 20}} {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			s := &Server{}
			s.rbufs.peakResetMs.Store(replyPeakResetDefault)
			l := &eventLoop{s: s, clients: make([]*Client, tc.n+3)}
			for fd := 3; fd < tc.n+3; fd++ { // fds 0-2 are not clients
				c := &Client{srv: s}
				c.reply.init()
				l.clients[fd] = c
			}
			seen := map[*Client]int{}
			calls := (tc.n + tc.perCall - 1) / tc.perCall // every client once or twice
			for call := 1; call <= calls; call++ {
				now := int64(call) * 100_000 // each visit resets the peak
				l.cronReplies(now, tc.n)
				visited := 0
				for _, c := range l.clients {
					if c != nil && c.reply.lastReset == now {
						visited++
						seen[c]++
					}
				}
				if visited != tc.perCall {
					t.Fatalf("call %d visited %d clients, want %d", call, visited, tc.perCall)
				}
			}
			for _, c := range l.clients {
				if c != nil && (seen[c] < 1 || seen[c] > 2) {
					t.Fatalf("a client was visited %d times in %d calls", seen[c], calls)
				}
			}
		})
	}
}

// replyConn is a raw connection that reads whole RESP2 replies.
type replyConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func (e *testEnv) replyConn() *replyConn {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &replyConn{t: e.t, nc: nc, r: bufio.NewReader(nc)}
}

// do sends a command (space-separated words) and returns its reply: a
// status, an error or a bulk string's text.
func (r *replyConn) do(cmd string) string {
	r.t.Helper()
	f := strings.Fields(cmd)
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(f)) + "\r\n")
	for _, a := range f {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	if _, err := r.nc.Write([]byte(b.String())); err != nil {
		r.t.Fatal(err)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("%s: %v", cmd, err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line[0] != '$' {
		return line
	}
	n, _ := strconv.Atoi(line[1:])
	if n < 0 {
		return ""
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		r.t.Fatal(err)
	}
	return string(buf[:n])
}

// TestReplyBufferClientList follows a client's reply buffer in another
// client's CLIENT LIST as the cron resizes it, with DEBUG REPLYBUFFER's
// settings, on the fake clock; the cron runs when the test asks.
func TestReplyBufferClientList(t *testing.T) {
	e := startServer(t, func(c *Config) {
		c.EventLoops = 1
		c.cronEvery = time.Hour
		c.EnableDebugCommand = "yes"
	})
	rb, ctl := e.replyConn(), e.replyConn()
	if got := rb.do("CLIENT SETNAME rb"); got != "+OK" {
		t.Fatalf("CLIENT SETNAME: %s", got)
	}
	// cronPass runs the loop's cron once: it runs at the end of the
	// iteration, so after the second round trip that follows the request
	cronPass := func() {
		for _, l := range e.srv.loops {
			l.requestCron()
		}
		ctl.do("PING")
		ctl.do("PING")
	}
	fieldRe := regexp.MustCompile(`\b(rbs|rbp|obl|oll|omem|argv-mem)=(\d+)`)
	fields := func(line string) string {
		var out []string
		for _, m := range fieldRe.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1]+"="+m[2])
		}
		return strings.Join(out, " ")
	}
	rbFields := func() string {
		t.Helper()
		for _, line := range strings.Split(ctl.do("CLIENT LIST"), "\n") {
			if strings.Contains(line, " name=rb ") {
				return fields(line)
			}
		}
		t.Fatal("no client rb in CLIENT LIST")
		return ""
	}
	if got := ctl.do("SET big " + strings.Repeat("x", 20000)); got != "+OK" {
		t.Fatal(got)
	}
	get := func() {
		t.Helper()
		if got := rb.do("GET big"); len(got) != 20000 {
			t.Fatalf("GET: %d bytes", len(got))
		}
	}
	steps := []struct {
		what   string
		action func()
		want   string
	}{
		{"a new client", func() {}, "argv-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0"},
		{"first cron: the peak is reset", cronPass, "argv-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0"},
		{"second cron: shrunk to 1 KB", cronPass, "argv-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0"},
		{"a 20 KB reply fills it", get, "argv-mem=0 rbs=1024 rbp=1024 obl=0 oll=0 omem=0"},
		{"the cron doubles it", cronPass, "argv-mem=0 rbs=2048 rbp=1024 obl=0 oll=0 omem=0"},
		{"peak never reset", func() {
			ctl.do("DEBUG REPLYBUFFER PEAK-RESET-TIME never")
			e.clock.Advance(time.Minute)
			cronPass()
		}, "argv-mem=0 rbs=2048 rbp=1024 obl=0 oll=0 omem=0"},
		{"filled again: 4 KB", func() { get(); cronPass() }, "argv-mem=0 rbs=4096 rbp=2048 obl=0 oll=0 omem=0"},
		{"resizing off", func() {
			ctl.do("DEBUG REPLYBUFFER RESIZING 0")
			get()
			cronPass()
		}, "argv-mem=0 rbs=4096 rbp=4096 obl=0 oll=0 omem=0"},
		{"resizing on, default reset time: grown, then the peak reset", func() {
			ctl.do("DEBUG REPLYBUFFER RESIZING 1")
			ctl.do("DEBUG REPLYBUFFER PEAK-RESET-TIME reset")
			e.clock.Advance(5 * time.Second)
			cronPass()
		}, "argv-mem=0 rbs=8192 rbp=0 obl=0 oll=0 omem=0"},
		{"idle: back to 1 KB", cronPass, "argv-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0"},
	}
	for _, st := range steps {
		st.action()
		if got := rbFields(); got != st.want {
			t.Errorf("%s: %s, want %s", st.what, got, st.want)
		}
	}
	// the running command's arguments, as Redis's argv_len_sum
	if got := fields(ctl.do("CLIENT INFO")); !strings.HasPrefix(got, "argv-mem=10 ") {
		t.Errorf("CLIENT INFO of itself: %s, want argv-mem=10", got)
	}
	if n, _ := strconv.Atoi(e.infoField("reply_buffer_shrinks")); n < 2 {
		t.Errorf("reply_buffer_shrinks %d, want at least 2", n)
	}
	if n, _ := strconv.Atoi(e.infoField("reply_buffer_expands")); n != 3 {
		t.Errorf("reply_buffer_expands %d, want 3", n)
	}
}

// TestDebugReplyBuffer: DEBUG REPLYBUFFER's replies and errors, as
// redis-server 7.0.15's.
func TestDebugReplyBuffer(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	// the subcommand as the client typed it, as Redis
	unknown := "ERR:ERR unknown subcommand or wrong number of arguments for 'REPLYBUFFER'. Try DEBUG HELP."
	e.run([]step{
		{"DEBUG REPLYBUFFER", unknown},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME", unknown},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME 1 2", unknown},
		{"DEBUG REPLYBUFFER FOO 1", unknown},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME abc", "ERR:ERR value is not an integer or out of range"},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME 1.5", "ERR:ERR value is not an integer or out of range"},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME 100", "OK"},
	})
	if got := e.srv.rbufs.peakResetMs.Load(); got != 100 {
		t.Errorf("peak reset time %d, want 100", got)
	}
	for _, tc := range []struct {
		cmd      string
		resetMs  int64
		resizing bool
	}{
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME NEVER", -1, true},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME -5", -5, true},
		{"DEBUG REPLYBUFFER PEAK-RESET-TIME reset", 5000, true},
		{"DEBUG REPLYBUFFER RESIZING 0", 5000, false},
		{"DEBUG REPLYBUFFER RESIZING 7", 5000, true},
		{"DEBUG REPLYBUFFER RESIZING abc", 5000, false}, // atoi: 0
		{"DEBUG REPLYBUFFER resizing 1", 5000, true},
	} {
		e.run([]step{{tc.cmd, "OK"}})
		if r, on := e.srv.rbufs.peakResetMs.Load(), !e.srv.rbufs.resizeOff.Load(); r != tc.resetMs || on != tc.resizing {
			t.Errorf("%s: reset %d resizing %v, want %d %v", tc.cmd, r, on, tc.resetMs, tc.resizing)
		}
	}
	off := startServer(t, nil) // enable-debug-command no
	off.run([]step{{"DEBUG REPLYBUFFER RESIZING 0", "ERR:ERR DEBUG command not allowed"}})
}
