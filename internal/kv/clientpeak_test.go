package kv

import (
	"context"
	"strings"
	"testing"
	"time"
)

// client_recent_max_*_buffer keep the biggest buffers of eight one-second
// slots as Redis's clientsCron: the slot after the current one is cleared
// at each sample, so while samples go on a second's peak stays for the 6
// seconds after it; a second without samples leaves its slot as it was.
func TestClientPeaksWindow(t *testing.T) {
	type sample struct{ sec, in, out int64 }
	cases := []struct {
		name    string
		samples []sample
		in, out int64
	}{
		{"none", nil, 0, 0},
		{"one", []sample{{100, 5, 7}}, 5, 7},
		{"max of a second", []sample{{100, 5, 1}, {100, 2, 9}}, 5, 9},
		{"kept 6 s", []sample{{100, 50, 60}, {101, 1, 1}, {102, 1, 1}, {103, 1, 1}, {104, 1, 1}, {105, 1, 1}, {106, 1, 1}}, 50, 60},
		{"gone at 7 s", []sample{{100, 50, 60}, {101, 1, 1}, {102, 1, 1}, {103, 1, 1}, {104, 1, 1}, {105, 1, 1}, {106, 1, 1}, {107, 2, 3}}, 2, 3},
		{"cleared by the second before", []sample{{100, 50, 60}, {107, 2, 3}}, 2, 3},
		{"stale when that second is skipped", []sample{{100, 50, 60}, {103, 2, 3}, {108, 4, 1}}, 50, 60},
	}
	for _, tc := range cases {
		var p clientPeaks
		for _, s := range tc.samples {
			p.note(s.sec, s.in, s.out)
		}
		if in, out := p.recent(); in != tc.in || out != tc.out {
			t.Errorf("%s: recent %d %d, want %d %d", tc.name, in, out, tc.in, tc.out)
		}
	}
}

// INFO reports the biggest input buffer the cron saw in the last seconds,
// not the biggest now: a client that held a big partial command and left
// is still counted until its second falls out of the window.
func TestInfoClientRecentMax(t *testing.T) {
	e := startServer(t, func(c *Config) { c.cronEvery = time.Hour })
	s := e.srv
	ctx := context.Background()
	biggest := func() int64 { return biggestQueryBuf(s) }
	info := func() int64 {
		v, err := e.rdb.Info(ctx, "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		return infoNum(v, "client_recent_max_input_buffer")
	}
	e.run([]step{{"ping", "PONG"}})
	small := biggest()
	r := e.raw()
	if _, err := r.nc.Write([]byte("*2\r\n$4\r\necho\r\n$300000\r\n" + strings.Repeat("x", 200000))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); biggest() < 200000; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the partial command is not read: biggest buffer %d", biggest())
		}
	}
	big := biggest()
	s.sampleMetrics(100_000)
	r.nc.Close()
	for deadline := time.Now().Add(5 * time.Second); biggest() > small; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client with the big buffer is still there")
		}
	}
	for sec := int64(100); sec <= 107; sec++ {
		if sec > 100 {
			s.sampleMetrics(sec * 1000)
		}
		want := big
		if sec == 107 {
			want = small
		}
		if got := info(); got != want {
			t.Errorf("at second %d: client_recent_max_input_buffer %d, want %d", sec, got, want)
		}
	}
}

// The cron's scan of the clients' buffers holds the server's lock only to
// copy a chunk of the client list: between chunks it is free (accepts and
// CLIENT commands go on), and every client is still seen.
func TestClientPeaksScanUnlocked(t *testing.T) {
	e := startServer(t, func(c *Config) { c.cronEvery = time.Hour })
	s := e.srv
	count := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.clients)
	}
	base := count()
	var conns []*rawConn
	for range 9 {
		r := e.raw()
		r.roundTrip("PING\r\n", "+PONG\r\n")
		conns = append(conns, r)
	}
	// clients that leave give their place in the list to the last one
	for _, i := range []int{0, 4, 5} {
		conns[i].nc.Close()
	}
	consistent := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, c := range s.clientList {
			if c.listIdx != i || s.clients[c.id] != c {
				return false
			}
		}
		return len(s.clientList) == len(s.clients)
	}
	for deadline := time.Now().Add(5 * time.Second); count() != base+6; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients, want %d", count(), base+6)
		}
	}
	if !consistent() {
		t.Fatal("the client list does not match the clients")
	}
	big := e.raw()
	if _, err := big.nc.Write([]byte("*2\r\n$4\r\necho\r\n$300000\r\n" + strings.Repeat("x", 100000))); err != nil {
		t.Fatal(err)
	}
	biggest := func() int64 { return biggestQueryBuf(s) }
	for deadline := time.Now().Add(5 * time.Second); biggest() < 100000; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the partial command is not read: biggest buffer %d", biggest())
		}
	}
	want := biggest()
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	chunks, held := 0, 0
	s.peakChunk = 2
	s.peakScanHook = func() {
		chunks++
		if !s.mu.TryLock() {
			held++
			return
		}
		s.mu.Unlock()
	}
	in, _ := s.biggestBuffers()
	if held > 0 || chunks != (n+1)/2 {
		t.Errorf("%d clients in chunks of 2: %d chunks, the lock held after %d of them", n, chunks, held)
	}
	if in != want {
		t.Errorf("biggest input buffer %d, want %d", in, want)
	}
}

// biggestQueryBuf is the biggest input buffer of the server's clients now.
func biggestQueryBuf(s *Server) (in int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		in = max(in, c.shared.qbufSize.Load())
	}
	return in
}
