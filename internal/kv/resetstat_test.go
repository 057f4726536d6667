package kv

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// CONFIG RESETSTAT zeroes the INFO stats counters redis-server 7.0.15
// zeroes (checked on it: each made non-zero, then RESETSTAT), the sync
// counters and evicted_clients among them. total_commands_processed is 1
// after: RESETSTAT itself counts, as in Redis.
func TestResetStatZeroes(t *testing.T) {
	e := startServer(t, nil)
	psync := func(cmd string) string { return firstLine(t, e, cmd) }
	e.run([]step{{"set a b", "OK"}, {"get a", "b"}, {"get nokey", "nil"}})
	r := e.raw()
	r.roundTrip("NOSUCH\r\n", "-ERR unknown command 'NOSUCH', with args beginning with: \r\n")
	if got := psync("PSYNC 0123456789012345678901234567890123456789 1"); !strings.HasPrefix(got, "+FULLRESYNC") {
		t.Fatalf("PSYNC: %q", got)
	}
	waitUntil(t, "the full sync to count", func() bool { return e.infoField("sync_full") == "1" })
	info := e.srv.ReplInfo()
	if got := psync("PSYNC " + info["master_replid"] + " " + info["master_repl_offset"]); !strings.HasPrefix(got, "+CONTINUE") {
		t.Fatalf("PSYNC to continue: %q", got)
	}
	// a client over maxmemory-clients, with its MULTI queue
	const limit = 256 << 10
	e.setConfig("maxmemory-clients", strconv.Itoa(limit))
	victim, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	arg := strings.Repeat("m", 32<<10)
	req := "*1\r\n$5\r\nMULTI\r\n"
	for i := 0; i < 2*limit/len(arg)+1; i++ {
		req += "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.Itoa(len(arg)) + "\r\n" + arg + "\r\n"
	}
	_, _ = victim.Write([]byte(req))
	if _, closed := readUntilClosed(victim); !closed {
		t.Fatal("the client over maxmemory-clients was not closed")
	}
	e.setConfig("maxmemory-clients", "0")

	cases := []struct{ field, after string }{
		{"total_commands_processed", "1"},
		{"keyspace_hits", "0"},
		{"keyspace_misses", "0"},
		{"total_error_replies", "0"},
		{"sync_full", "0"},
		{"sync_partial_ok", "0"},
		{"sync_partial_err", "0"},
		{"evicted_clients", "0"},
	}
	for _, tc := range cases {
		if v := e.infoField(tc.field); v == "0" {
			t.Fatalf("%s is 0 before CONFIG RESETSTAT", tc.field)
		}
	}
	e.run([]step{{"config resetstat", "OK"}})
	for _, tc := range cases {
		if v := e.infoField(tc.field); v != tc.after {
			t.Errorf("after CONFIG RESETSTAT %s:%s, want %s", tc.field, v, tc.after)
		}
	}
}
