package kv

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sync_partial_err counts the PSYNCs answered with a full resync although
// the replica asked to continue (any replid but "?"), as redis-server
// 7.0.15 counts them; PSYNC ? -1, SYNC and a partial resync that goes on
// are not counted.
func TestInfoSyncPartialErr(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	stats := func() (full, ok, errs int64) {
		info, err := e.rdb.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		return infoNum(info, "sync_full"), infoNum(info, "sync_partial_ok"), infoNum(info, "sync_partial_err")
	}
	psync := func(cmd string) string { return firstLine(t, e, cmd) }
	e.run([]step{{"set a b", "OK"}})
	steps := []struct {
		cmd       func() string
		head      string // the answer's start
		full, ok  int64
		partialEr int64
	}{
		{func() string { return "PSYNC ? -1" }, "+FULLRESYNC", 1, 0, 0},
		{func() string { return "SYNC" }, "$", 2, 0, 0},
		{func() string { return "PSYNC 0123456789012345678901234567890123456789 1" }, "+FULLRESYNC", 3, 0, 1},
		{func() string { // our replid, an offset past the backlog
			return "PSYNC " + e.srv.ReplInfo()["master_replid"] + " 1000000"
		}, "+FULLRESYNC", 4, 0, 2},
		{func() string { // our replid and offset: the link goes on
			info := e.srv.ReplInfo()
			return "PSYNC " + info["master_replid"] + " " + info["master_repl_offset"]
		}, "+CONTINUE", 4, 1, 2},
	}
	for _, st := range steps {
		cmd := st.cmd()
		if got := psync(cmd); !strings.HasPrefix(got, st.head) {
			t.Fatalf("%s: %q, want %s...", cmd, got, st.head)
		}
		want := strconv.FormatInt(st.full, 10) + " " + strconv.FormatInt(st.ok, 10) + " " + strconv.FormatInt(st.partialEr, 10)
		var got string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			full, ok, errs := stats()
			if got = strconv.FormatInt(full, 10) + " " + strconv.FormatInt(ok, 10) + " " + strconv.FormatInt(errs, 10); got == want || time.Now().After(deadline) {
				break
			}
		}
		if got != want {
			t.Errorf("after %s: sync_full sync_partial_ok sync_partial_err = %s, want %s", cmd, got, want)
		}
	}
}

// firstLine sends cmd on a connection of its own and returns the first
// line of the answer (PSYNC's +FULLRESYNC or +CONTINUE, a bulk header for
// SYNC).
func firstLine(t *testing.T, e *testEnv, cmd string) string {
	t.Helper()
	r := e.raw()
	defer r.nc.Close()
	if _, err := r.nc.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(r.nc).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return line
}
