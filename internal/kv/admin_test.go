package kv

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestDebugNeedsEnableDebugCommand(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"", "ERR:ERR DEBUG command not allowed"},
		{"no", "ERR:ERR DEBUG command not allowed"},
		{"yes", "OK"},
		{"local", "OK"}, // the test connects over loopback
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EnableDebugCommand = tt.mode })
			e.run([]step{
				{"debug sleep 0", tt.want},
				{"config set enable-debug-command yes", "ERR:ERR CONFIG SET failed (possibly related to argument 'enable-debug-command') - can't set immutable config"},
			})
		})
	}
	if _, err := New(Config{EnableDebugCommand: "maybe"}); err == nil {
		t.Error("enable-debug-command maybe: want an error")
	}
}

func TestDebugSubcommands(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	e.run([]step{
		{"debug digest", strings.Repeat("0", 40)},
		{"debug populate 3 k 8", "OK"},
		{"dbsize", "3"},
		{"strlen k:1", "8"},
		{"debug digest-value nosuchkey", "[" + strings.Repeat("0", 40) + "]"},
		{"debug object nosuchkey", "ERR:ERR no such key"},
		{"debug set-active-expire 0", "OK"},
		{"debug set-active-expire 1", "OK"},
		{"debug quicklist-packed-threshold 1k", "OK"},
		{"debug quicklist-packed-threshold 0", "OK"}, // Redis's default (list.tcl sets it back so)
		{"debug quicklist-packed-threshold 5gb", "ERR:ERR argument must be a memory value"},
		{"debug change-repl-id", "OK"},
		{"debug jmap", "OK"},
		{"debug reload", "OK"},
		{"debug nosuchthing", "ERR:ERR unknown subcommand"},
	})
	ctx := context.Background()
	obj, err := e.rdb.Do(ctx, "debug", "object", "k:1").Text()
	if err != nil || !regexp.MustCompile(`^Value at:\S+ refcount:1 encoding:embstr serializedlength:\d+ lru:\d+ lru_seconds_idle:\d+$`).MatchString(obj) {
		t.Errorf("DEBUG OBJECT: %q, %v", obj, err)
	}
	// the digest depends on the data only: the same data, the same digest
	d1, _ := e.rdb.Do(ctx, "debug", "digest").Text()
	if err := e.rdb.Set(ctx, "k:1", "other", 0).Err(); err != nil {
		t.Fatal(err)
	}
	d2, _ := e.rdb.Do(ctx, "debug", "digest").Text()
	if err := e.rdb.Set(ctx, "k:1", "value:1\x00", 0).Err(); err != nil {
		t.Fatal(err)
	}
	d3, _ := e.rdb.Do(ctx, "debug", "digest").Text()
	if d1 == d2 || d1 != d3 || len(d1) != 40 {
		t.Errorf("digests %s %s %s: want the first and last equal, the middle different", d1, d2, d3)
	}
}

func TestSlowlog(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"config get slowlog-log-slower-than", "[slowlog-log-slower-than 10000]"},
		{"config get slowlog-max-len", "[slowlog-max-len 128]"},
		{"slowlog len", "0"},
		{"config set slowlog-log-slower-than 0", "OK"},
		{"set a b", "OK"},
		{"slowlog len", "2"}, // CONFIG SET itself (it ran under the old threshold) and SET
		{"slowlog get 0", "[]"},
		{"slowlog get -2", "ERR:ERR count should be greater than or equal to -1"},
		{"config set slowlog-max-len 2", "OK"},
		{"slowlog len", "2"},
		{"slowlog reset", "OK"},
		{"config set slowlog-log-slower-than -1", "OK"},
		{"set a b", "OK"},
		{"slowlog len", "1"}, // SLOWLOG RESET itself, as in Redis
		{"slowlog nosuch", "ERR:ERR unknown subcommand 'nosuch'. Try SLOWLOG HELP."},
	})
	e.run([]step{{"config set slowlog-log-slower-than 0", "OK"}, {"slowlog reset", "OK"}, {"client setname slowname", "OK"}})
	res, err := e.rdb.Do(context.Background(), "slowlog", "get", "1").Slice()
	if err != nil || len(res) != 1 {
		t.Fatalf("SLOWLOG GET 1: %v, %v", res, err)
	}
	entry := res[0].([]any)
	args := fmt.Sprint(entry[3])
	if len(entry) != 6 || args != "[client setname slowname]" || entry[5] != "slowname" {
		t.Errorf("SLOWLOG entry %v: want the CLIENT SETNAME call and its client's name", entry)
	}
}

func TestLatencyMonitor(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	e.run([]step{
		{"latency latest", "[]"},
		{"latency doctor", "*"},
		{"config set latency-monitor-threshold 5", "OK"},
		{"debug sleep 0.02", "OK"},
		{"latency reset nosuchevent", "0"},
		{"latency graph nosuchevent", "ERR:ERR No samples available for event 'nosuchevent'"},
		{"latency history command", "*"},
		{"latency help xxx", "ERR:ERR wrong number of arguments for 'latency|help' command"},
		{"latency latest xxx", "ERR:ERR wrong number of arguments for 'latency|latest' command"},
	})
	// an event under the threshold is not sampled, one at it is
	e.srv.noteLatency("expire-cycle", 4*time.Millisecond)
	e.run([]step{{"latency history expire-cycle", "[]"}})
	e.srv.noteLatency("expire-cycle", 5*time.Millisecond)
	ctx := context.Background()
	if h, err := e.rdb.Do(ctx, "latency", "history", "expire-cycle").Slice(); err != nil || len(h) != 1 {
		t.Fatalf("LATENCY HISTORY expire-cycle: %v, %v", h, err)
	}
	latest, err := e.rdb.Do(ctx, "latency", "latest").Slice()
	if err != nil || len(latest) != 2 {
		t.Fatalf("LATENCY LATEST: %v, %v", latest, err)
	}
	ev := latest[0].([]any)
	if ev[0] != "command" {
		ev = latest[1].([]any)
	}
	if ev[0] != "command" || ev[2].(int64) < 5 {
		t.Errorf("LATENCY LATEST %v: want a command event of at least 5 ms", ev)
	}
	e.run([]step{{"latency reset", "2"}, {"latency latest", "[]"}})

	e.run([]step{{"config resetstat", "OK"}, {"set a b", "OK"}, {"set c d", "OK"}, {"client id", "*"}})
	h, err := e.rdb.Do(ctx, "latency", "histogram", "set", "client", "nosuch").Result()
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(h)
	if !strings.Contains(got, "set [calls 2 histogram_usec [") || !strings.Contains(got, "client|id [calls 1 histogram_usec [") {
		t.Errorf("LATENCY HISTOGRAM: %s", got)
	}
}

func TestInfoStats(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"config resetstat", "OK"},
		{"set a b", "OK"},
		{"set a", "ERR:ERR wrong number of arguments"},
		{"lpush a x", "ERR:WRONGTYPE"},
		{"nosuchcommand", "ERR:ERR unknown command"},
		{"config get maxmemory", "*"},
	})
	ctx := context.Background()
	info, err := e.rdb.Info(ctx, "commandstats", "errorstats", "stats", "cpu").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`cmdstat_set:calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=1,failed_calls=0`,
		`cmdstat_lpush:calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=1`,
		`cmdstat_config\|get:calls=1,`,
		`errorstat_ERR:count=2`,
		`errorstat_WRONGTYPE:count=1`,
		`total_error_replies:3`,
		`used_cpu_user:\d+\.\d{6}`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(info) {
			t.Errorf("INFO: no line matching %s in\n%s", want, info)
		}
	}
	e.run([]step{{"config resetstat", "OK"}})
	info, _ = e.rdb.Info(ctx, "commandstats", "errorstats").Result()
	if strings.Contains(info, "cmdstat_set") || strings.Contains(info, "errorstat_") {
		t.Errorf("after CONFIG RESETSTAT:\n%s", info)
	}
	// the default sections leave commandstats out, as Redis
	info, _ = e.rdb.Info(ctx).Result()
	if strings.Contains(info, "# Commandstats") || strings.Contains(info, "# Latencystats") || !strings.Contains(info, "# Errorstats") {
		t.Errorf("INFO default sections:\n%s", info)
	}
	// the CPU time is the process's (getrusage)
	u, _ := cpuTimes()
	m := regexp.MustCompile(`used_cpu_user:([\d.]+)`).FindStringSubmatch(info)
	if got, err := strconv.ParseFloat(m[1], 64); err != nil || got <= 0 || got > u+1 {
		t.Errorf("used_cpu_user %v: want between 0 and %v", m[1], u)
	}
}

func TestConfigCompatParams(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		// encoding thresholds: accepted, aliases share one value
		{"config set hash-max-ziplist-value 100", "OK"},
		{"config get hash-max-listpack-value", "[hash-max-listpack-value 100]"},
		{"config set list-compress-depth 2 set-max-intset-entries 1kb", "OK"},
		{"config get set-max-intset-entries", "[set-max-intset-entries 1024]"},
		{"config set list-max-ziplist-size -2", "OK"},
		{"config set activedefrag maybe", "ERR:ERR CONFIG SET failed (possibly related to argument 'activedefrag') - argument must be 'yes' or 'no'"},
		{"config set loglevel loud", "ERR:ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following"},
		{"config set daemonize yes", "ERR:ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"},
		{"config set maxmemory 10 maxmemory 11", "ERR:ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"},
		// all or nothing: the refused second pair undoes the first
		{"config set maxmemory 10000002 maxmemory-clients 200%", "ERR:ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"},
		{"config get maxmemory", "[maxmemory 0]"},
		{"config get port", "[port " + e.addr[strings.LastIndexByte(e.addr, ':')+1:] + "]"},
		{"config get enable-debug-command", "[enable-debug-command no]"},
		{"config set nosuchparam 1", "ERR:ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'"},
	})
}

func TestClientAdmin(t *testing.T) {
	for _, loops := range []int{0, -1} { // event loops, goroutines
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			ctx := context.Background()
			other := e.client(2)
			if err := other.Do(ctx, "client", "setname", "victim").Err(); err != nil {
				t.Fatal(err)
			}
			id, err := other.Do(ctx, "client", "id").Int64()
			if err != nil {
				t.Fatal(err)
			}
			list, _ := e.rdb.Do(ctx, "client", "list").Text()
			if !strings.Contains(list, "name=victim") || !strings.Contains(list, "cmd=client|id") {
				t.Errorf("CLIENT LIST does not show the other client's name and last command:\n%s", list)
			}
			info, _ := e.rdb.Do(ctx, "client", "info").Text()
			if !regexp.MustCompile(`idle=0 flags=N db=0 .*qbuf=26 .*cmd=client\|info `).MatchString(info) {
				t.Errorf("CLIENT INFO: %s", info)
			}
			e.run([]step{
				{"client kill", "ERR:ERR wrong number of arguments for 'client|kill' command"},
				{"client kill id 10 wrong_arg", "ERR:ERR syntax error"},
				{"client kill id -1", "ERR:ERR client-id should be greater than 0"},
				{"client kill type wrong_type", "ERR:ERR Unknown client type 'wrong_type'"},
				{"client kill user wrong_user", "ERR:ERR No such user 'wrong_user'"},
				{"client kill skipme yes_or_no", "ERR:ERR syntax error"},
				{"client kill 1.2.3.4:5", "ERR:ERR No such client"},
				{"client kill id " + strconv.FormatInt(id, 10), "1"},
				{"client list id " + strconv.FormatInt(id+1000, 10), ""},
				{"client no-evict on", "OK"},
				{"client no-evict maybe", "ERR:ERR syntax error"},
			})
			testutilWait(t, func() bool {
				return !strings.Contains(e.srv.clientListForTest(), "name=victim")
			})
		})
	}
}

// testutilWait polls cond for up to 5 s.
func testutilWait(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5 s")
}

func (s *Server) clientListForTest() string {
	var b strings.Builder
	for _, x := range s.clientsSorted() {
		b.WriteString(" name=" + x.sharedName())
	}
	return b.String()
}

func TestClientReply(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	// OFF answers nothing until ON; SKIP drops the next reply only
	r.roundTrip("CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY ON\r\n", "+OK\r\n")
	r.roundTrip("CLIENT REPLY SKIP\r\nSET a 2\r\nGET a\r\n", "$1\r\n2\r\n")
}

func TestMonitor(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip("MONITOR\r\n", "+OK\r\n")
	ctx := context.Background()
	if err := e.rdb.Set(ctx, "k", "v w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Do(ctx, "auth", "secret").Err(); err == nil {
		t.Fatal("AUTH without a password: want an error")
	}
	if err := e.rdb.Do(ctx, "config", "get", "x").Err(); err != nil { // admin: not shown
		t.Fatal(err)
	}
	if err := e.rdb.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	// MIGRATE leaves the event loop and runs again: shown once, its
	// password redacted
	host, port, _ := strings.Cut(e.addr, ":")
	if err := e.rdb.Do(ctx, "migrate", host, port, "nokey", 0, 1000, "auth", "pw").Err(); err != nil {
		t.Fatal(err)
	}
	// a transaction's commands show as they run, before EXEC
	if _, err := e.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "foo", "bar", 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(r.nc)
	var lines []string
	for len(lines) < 7 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("monitor read: %v (got %q)", err, lines)
		}
		if strings.Contains(line, `"hello"`) { // go-redis's handshake
			continue
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "set" "k" "v w"$`),
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "auth" "\(redacted\)"$`),
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "get" "k"$`),
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "migrate" "127\.0\.0\.1" "\d+" "nokey" "0" "1000" "auth" "\(redacted\)"$`),
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "multi"$`),
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "set" "foo" "bar"$`),
		regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "exec"$`),
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("monitor line %d: %q, want %s", i, lines[i], re)
		}
	}
}

func TestMemoryCommand(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"set k " + strings.Repeat("x", 1000), "OK"},
		{"memory usage nosuchkey", "nil"},
		{"memory usage k samples x", "ERR:ERR value is not an integer"},
		{"memory usage k samples", "ERR:ERR syntax error"},
		{"memory doctor", "*"},
		{"memory stats", "*"},
		{"memory nosuch", "ERR:ERR unknown subcommand 'nosuch'. Try MEMORY HELP."},
	})
	n, err := e.rdb.Do(context.Background(), "memory", "usage", "k").Int64()
	if err != nil || n < 1000 || n > 2000 {
		t.Errorf("MEMORY USAGE of a 1000-byte string: %d, %v", n, err)
	}
}

func TestDigestIgnoresOrder(t *testing.T) {
	a := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	b := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	a.run([]step{{"sadd s 1 2 3 x y z", "6"}, {"hset h a 1 b 2 c 3", "3"}, {"rpush l a b", "2"}, {"set k v", "OK"}})
	b.run([]step{{"set k v", "OK"}, {"rpush l a b", "2"}, {"hset h c 3 b 2 a 1", "3"}, {"sadd s z y x 3 2 1", "6"}})
	ctx := context.Background()
	da, _ := a.rdb.Do(ctx, "debug", "digest").Text()
	db, _ := b.rdb.Do(ctx, "debug", "digest").Text()
	if da != db {
		t.Errorf("same data, digests %s and %s", da, db)
	}
	b.run([]step{{"rpush l c", "3"}})
	if dc, _ := b.rdb.Do(ctx, "debug", "digest").Text(); dc == da {
		t.Error("different data, same digest")
	}
}

// TestReplicaStreamIntrospected: the link applying a primary's stream has
// no connection; the slow log and MONITOR on the replica show it as
// "master".
func TestReplicaStreamIntrospected(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	r.run([]step{{"config set slowlog-log-slower-than 0", "OK"}, {"slowlog reset", "OK"}})
	mon := r.raw()
	mon.roundTrip("MONITOR\r\n", "+OK\r\n")
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	p.run([]step{{"set k v", "OK"}}) // streamed, not in the full sync
	waitSynced(t, p, r)
	mon.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(mon.nc)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("monitor: %v", err)
		}
		if strings.Contains(line, `"set" "k" "v"`) {
			if !strings.Contains(line, "[0 master]") {
				t.Errorf("monitor line %q: want the master link", line)
			}
			break
		}
	}
	res, err := r.rdb.Do(context.Background(), "slowlog", "get", "-1").Slice()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range res {
		e := x.([]any)
		if fmt.Sprint(e[3]) == "[set k v]" && e[4] == "master" {
			found = true
		}
	}
	if !found {
		t.Errorf("slow log %v: no SET from the master link", res)
	}
}

func TestMonitorReset(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip("MONITOR\r\n", "+OK\r\n")
	monitoring := func() bool {
		for _, x := range e.srv.clientsSorted() {
			if x.shared.flags.Load()&flagMonitor != 0 {
				return true
			}
		}
		return false
	}
	testutilWait(t, monitoring)
	r.roundTrip("RESET\r\n", "+RESET\r\n")
	r.roundTrip("PING\r\n", "+PONG\r\n")
	if monitoring() {
		t.Error("after RESET still a monitor")
	}
}

// TestReplStreamStartsWithSelect: after a full sync the stream's first
// record is SELECT 0, as Redis's (tools reading the stream expect it).
func TestReplStreamStartsWithSelect(t *testing.T) {
	e := startServer(t, nil)
	br := e.syncStream()
	e.run([]step{{"set k v", "OK"}})
	want := "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n"
	got := make([]byte, 0, len(want))
	for len(got) < len(want) {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("stream: %v (got %q)", err, got)
		}
		if len(got) == 0 && b == '\n' { // keepalive newlines
			continue
		}
		got = append(got, b)
	}
	if !strings.EqualFold(string(got), want) {
		t.Errorf("stream %q, want %q", got, want)
	}
}

// TestBLPopPassesOverWrongType: a blocked BLPOP whose key becomes a string
// keeps waiting and takes the next list pushed there, as Redis.
func TestBLPopPassesOverWrongType(t *testing.T) {
	for _, loops := range []int{0, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			ctx := context.Background()
			res := make(chan string, 1)
			blocked := e.client(2)
			go func() {
				v, err := blocked.BLPop(ctx, 5*time.Second, "list").Result()
				res <- fmt.Sprint(v, err)
			}()
			testutilWait(t, func() bool { return e.srv.blocked.Load() == 1 })
			e.run([]step{
				{"multi", "OK"}, {"lpush list a", "QUEUED"}, {"del list", "QUEUED"}, {"set list foo", "QUEUED"},
				{"exec", "[1 1 OK]"}, {"del list", "1"}, {"lpush list b", "1"},
			})
			if got := <-res; got != "[list b] <nil>" {
				t.Errorf("BLPOP: %s, want [list b]", got)
			}
			go func() {
				k, v, err := blocked.BLMPop(ctx, 5*time.Second, "left", 1, "list2").Result()
				res <- fmt.Sprint(k, v, err)
			}()
			testutilWait(t, func() bool { return e.srv.blocked.Load() == 1 })
			e.run([]step{
				{"multi", "OK"}, {"lpush list2 a", "QUEUED"}, {"del list2", "QUEUED"}, {"set list2 foo", "QUEUED"},
				{"exec", "[1 1 OK]"}, {"del list2", "1"}, {"lpush list2 b", "1"},
			})
			if got := <-res; got != "list2[b] <nil>" {
				t.Errorf("BLMPOP: %s, want list2 [b]", got)
			}
			e.run([]step{{"set s x", "OK"}, {"blpop s 0", "ERR:WRONGTYPE"}})
		})
	}
}

// TestFlushAllWatchedKeys: FLUSHALL fails a WATCH on a key it deletes, not
// on a key that was not there, as Redis.
func TestFlushAllWatchedKeys(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip("DEL x\r\nWATCH x\r\nFLUSHALL\r\nMULTI\r\nPING\r\nEXEC\r\n", ":0\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n")
	r.roundTrip("SET x 30\r\nWATCH x\r\nFLUSHALL\r\nMULTI\r\nPING\r\nEXEC\r\n", "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n")
}

func TestInfoMigrateCachedSockets(t *testing.T) {
	src, dst := startServer(t, nil), startServer(t, nil)
	host, port, _ := strings.Cut(dst.addr, ":")
	ctx := context.Background()
	count := func() string {
		info, _ := src.rdb.Info(ctx, "stats").Result()
		return regexp.MustCompile(`migrate_cached_sockets:(\d+)`).FindStringSubmatch(info)[1]
	}
	if got := count(); got != "0" {
		t.Fatalf("migrate_cached_sockets %s before any MIGRATE", got)
	}
	src.run([]step{{"set k v", "OK"}, {"migrate " + host + " " + port + " k 0 5000", "OK"}})
	if got := count(); got != "1" {
		t.Errorf("migrate_cached_sockets %s after a MIGRATE, want 1", got)
	}
}

func TestRedactedArgs(t *testing.T) {
	tests := []struct {
		cmd  string
		want string // the arguments, "x" where redacted
	}{
		{"auth pass", "auth x"},
		{"auth user pass", "auth x x"},
		{"hello 2 AUTH user pass SETNAME n", "hello 2 AUTH x x SETNAME n"},
		{"hello 3", "hello 3"},
		{"migrate h 1 key 9 5000", "migrate h 1 key 9 5000"},
		{"migrate h 1 key 9 5000 AUTH pass", "migrate h 1 key 9 5000 AUTH x"},
		{"migrate h 1 \"\" 9 5000 COPY AUTH2 user pass KEYS a auth", "migrate h 1 \"\" 9 5000 COPY AUTH2 x x KEYS a auth"},
		{"set auth pass", "set auth pass"},
	}
	table := commandTable()
	for _, tt := range tests {
		var args [][]byte
		for _, a := range strings.Fields(tt.cmd) {
			args = append(args, []byte(a))
		}
		red := redactedArgs(table.Lookup(args[0]), args)
		var got []string
		for i, a := range args {
			if red != nil && red[i] {
				got = append(got, "x")
			} else {
				got = append(got, string(a))
			}
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%s: %s, want %s", tt.cmd, g, tt.want)
		}
	}
}

// TestConfigListen: bind and port show where the server listens; setting
// them to that is accepted (CONFIG SET of every parameter to its value),
// another value is refused as a socket that cannot be opened.
func TestConfigListen(t *testing.T) {
	e := startServer(t, nil)
	_, port, _ := strings.Cut(e.addr, ":")
	e.run([]step{
		{"config get bind", "[bind 127.0.0.1]"},
		{"config get port", "[port " + port + "]"},
		{"config set bind 127.0.0.1", "OK"},
		{"config set port " + port + " maxmemory 5", "OK"},
		{"config set bind 0.0.0.0", "ERR:ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses."},
		{"config set maxmemory 7 port 1", "ERR:ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port."},
		{"config get maxmemory", "[maxmemory 5]"}, // rolled back
		{"config set repl-backlog-size 10000002", "OK"},
		{"config get repl-backlog-size", "[repl-backlog-size 10000002]"},
		{"config set repl-backlog-size 2gb", "ERR:ERR CONFIG SET failed (possibly related to argument 'repl-backlog-size') - argument must be between 16384 and 1073741824 inclusive"},
		{"config get replicaof", "[replicaof ]"},
		{"config get *-load-delay", "[]"}, // hidden from patterns
		{"config get key-load-delay", "[key-load-delay 0]"},
		{"config get repl-diskless-sync-delay", "[repl-diskless-sync-delay 5]"},
		{"config set masteruser \"\"", "OK"},
		{"config set masteruser other", "ERR:ERR CONFIG SET failed (possibly related to argument 'masteruser') - can't change masteruser of a running server"},
	})
	// save is kept as given (gantry has no RDB schedule)
	mustDo(t, e.rdb, "OK", "config", "set", "save", "3000 5  60 10")
	e.run([]step{{"config get save", "[save 3000 5 60 10]"}})
	mustDo(t, e.rdb, "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters", "config", "set", "save", "3000")
}
