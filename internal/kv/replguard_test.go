package kv

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestReplMinReplicasToWrite: a primary without enough good replicas
// refuses writes, EXEC of a transaction with a write (also when the
// setting changed after the write was queued) and writes queued in MULTI,
// and serves reads; with a replica attached, or with either parameter 0,
// writes go on.
func TestReplMinReplicasToWrite(t *testing.T) {
	p := startServer(t, nil)
	c := p.oneConn()
	tests := []struct {
		name  string
		steps []step
	}{
		{"off by default", []step{{"set k 1", "OK"}}},
		{"write refused", []step{
			{"config set min-replicas-to-write 1", "OK"},
			{"config get min-slaves-to-write", "map[min-slaves-to-write:1]"},
			{"set k 2", "ERR:NOREPLICAS Not enough good replicas to write."},
			{"incr n", "ERR:NOREPLICAS"},
			{"get k", "1"}, {"ping", "PONG"},
			// scripts: reads run, a write is refused
			{"eval return(redis.call('get',KEYS[1])) 1 k", "1"},
			{"eval return(redis.call('set',KEYS[1],'s')) 1 k", "ERR:NOREPLICAS"},
		}},
		{"queued write fails the transaction", []step{
			{"multi", "OK"}, {"set k 3", "ERR:NOREPLICAS"}, {"get k", "QUEUED"},
			{"exec", "ERR:EXECABORT Transaction discarded because of previous errors."},
		}},
		{"read-only transaction runs", []step{
			{"multi", "OK"}, {"get k", "QUEUED"}, {"exec", "[1]"},
		}},
		{"max-lag 0 turns it off", []step{
			{"config set min-replicas-to-write 1", "OK"}, {"config set min-replicas-max-lag 0", "OK"},
			{"set k 4", "OK"},
			{"config set min-slaves-max-lag 10", "OK"}, {"config get min-replicas-max-lag", "map[min-replicas-max-lag:10]"},
			{"set k 5", "ERR:NOREPLICAS"},
			{"config set min-replicas-to-write 0", "OK"}, {"set k 5", "OK"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { p.runWith(c, tc.steps) })
	}
	// the setting changes from another connection between queueing and
	// EXEC: EXEC is refused and nothing runs
	p.runWith(c, []step{{"set k 1", "OK"}, {"multi", "OK"}, {"incr k", "QUEUED"}})
	p.setConfig("min-replicas-to-write", "2")
	p.runWith(c, []step{{"exec", "ERR:EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write."}, {"get k", "1"}})
	if got := p.infoField("min_slaves_good_slaves"); got != "0" {
		t.Errorf("min_slaves_good_slaves %s, want 0", got)
	}
	// a shebang script that may write is refused before it runs, even
	// one that only reads; one flagged no-writes runs
	p.setConfig("min-replicas-to-write", "1")
	ctx := context.Background()
	for _, tc := range []struct{ script, want string }{
		{"#!lua\nreturn redis.call('get', KEYS[1])", "NOREPLICAS Not enough good replicas to write."},
		{"#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", ""},
	} {
		err := c.Eval(ctx, tc.script, []string{"k"}).Err()
		if got := fmt.Sprint(err); (tc.want == "") != (err == nil) || tc.want != "" && got != tc.want {
			t.Errorf("eval %q: %v, want %q", tc.script, err, tc.want)
		}
	}
	p.setConfig("min-replicas-to-write", "0")

	// a good replica lets writes through
	r := startServer(t, nil)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	p.setConfig("min-replicas-to-write", "1")
	waitUntil(t, "a good replica", func() bool { return p.infoField("min_slaves_good_slaves") == "1" })
	p.runWith(c, []step{{"set k 6", "OK"}, {"multi", "OK"}, {"incr k", "QUEUED"}, {"exec", "[7]"}})
	p.setConfig("min-replicas-to-write", "2")
	p.runWith(c, []step{{"set k 8", "ERR:NOREPLICAS"}})
	p.setConfig("min-replicas-to-write", "0")
	if v, err := c.Do(context.Background(), "get", "k").Text(); err != nil || v != strconv.Itoa(7) {
		t.Errorf("k = %q %v, want 7", v, err)
	}
}

// TestReplServeStaleDataNo: a replica whose link is down answers
// -MASTERDOWN to commands not flagged stale (and EXEC of a transaction
// with one) when replica-serve-stale-data is no, and serves them when it
// is yes or the server is a primary again. REPLICAOF accepts port 0, as
// Redis 7 does.
func TestReplServeStaleDataNo(t *testing.T) {
	s := startServer(t, nil)
	c := s.oneConn()
	const down = "ERR:MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
	s.runWith(c, []step{{"set k v", "OK"}, {"replicaof 127.0.0.1 -1", "ERR:ERR Invalid master port"}})
	tests := []struct {
		name  string
		stale string // replica-serve-stale-data
		steps []step
	}{
		{"stale data served", "yes", []step{{"replicaof 127.0.0.1 0", "OK"}, {"get k", "v"}, {"ping", "PONG"}}},
		{"stale data refused", "no", []step{
			{"get k", down}, {"ping", down}, {"dbsize", down},
			{"info server", "*"}, {"config get replica-serve-stale-data", "map[replica-serve-stale-data:no]"},
			{"role", "*"}, {"multi", "OK"}, {"get k", down}, {"exec", "ERR:EXECABORT"},
		}},
		{"alias", "yes", []step{{"config set slave-serve-stale-data no", "OK"}, {"get k", down}}},
		{"primary again", "no", []step{{"replicaof no one", "OK"}, {"get k", "v"}, {"ping", "PONG"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.setConfig("replica-serve-stale-data", tc.stale)
			s.runWith(c, tc.steps)
		})
	}

	// the link goes down between queueing and EXEC: EXEC is refused
	s.setConfig("replica-serve-stale-data", "no")
	for _, queued := range []string{"get k", "ping"} {
		s.runWith(c, []step{{"multi", "OK"}, {queued, "QUEUED"}})
		s.srv.ReplicaOf("127.0.0.1:0")
		s.runWith(c, []step{{"exec", "ERR:EXECABORT Transaction discarded because of: MASTERDOWN"}})
		s.srv.ReplicaOf("")
	}
	s.runWith(c, []step{{"multi", "OK"}, {"get k", "QUEUED"}, {"exec", "[v]"}})
	s.setConfig("replica-serve-stale-data", "yes")
}

// TestReplicaOfSendsAcknowledgedWrites: a primary that becomes a replica
// ends its replicas' links, after sending them the writes it
// acknowledged before REPLICAOF (Redis keeps them connected; a gantry
// replica serves no replica, so the links end once drained).
func TestReplicaOfSendsAcknowledgedWrites(t *testing.T) {
	e := startServer(t, nil)
	br := e.syncStream()
	c := e.oneConn()
	e.runWith(c, []step{{"set k v", "OK"}, {"replicaof 127.0.0.1 0", "OK"}, {"set k w", "ERR:READONLY"}})
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream: %v (got %q)", err, rest)
	}
	// the once-a-second PING may come in between
	got := strings.ReplaceAll(strings.ToLower(strings.TrimLeft(string(rest), "\n")), "*1\r\n$4\r\nping\r\n", "")
	if want := "*2\r\n$6\r\nselect\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n"; got != want {
		t.Errorf("stream %q, want %q then the end", got, want)
	}
	e.runWith(c, []step{{"replicaof no one", "OK"}})
}

// TestReplConfigParams: the replication parameters given a meaning here,
// their defaults, ranges and Redis's old names.
func TestReplConfigParams(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"config get min-replicas-to-write", "[min-replicas-to-write 0]"},
		{"config get min-replicas-max-lag", "[min-replicas-max-lag 10]"},
		{"config get replica-serve-stale-data", "[replica-serve-stale-data yes]"},
		{"config get repl-ping-replica-period", "[repl-ping-replica-period 1]"},
		{"config set min-replicas-to-write -1", "ERR:"},
		{"config set min-replicas-max-lag x", "ERR:"},
		{"config set replica-serve-stale-data maybe", "ERR:"},
		{"config set repl-ping-replica-period 0", "ERR:"},
		{"config set repl-ping-slave-period 3600", "OK"},
		{"config get repl-ping-replica-period", "[repl-ping-replica-period 3600]"},
		{"config set min-slaves-to-write 2", "OK"},
		{"config get min-replicas-to-write", "[min-replicas-to-write 2]"},
		{"config set min-slaves-to-write 0", "OK"},
	})
	if got := e.srv.repl.PingPeriod(); got != 3600 {
		t.Errorf("ping period %d, want 3600", got)
	}
}

// TestReplPublishPropagated: PUBLISH and SPUBLISH reach the subscribers of
// a replica, alone and inside a transaction, as in Redis.
func TestReplPublishPropagated(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	ctx := context.Background()
	sub := r.rdb.Subscribe(ctx, "ch")
	defer sub.Close()
	ssub := r.rdb.SSubscribe(ctx, "sch")
	defer ssub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ssub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	c := p.oneConn()
	p.runWith(c, []step{
		{"publish ch one", "0"},
		{"multi", "OK"}, {"publish ch two", "QUEUED"}, {"set k v", "QUEUED"}, {"exec", "[0 OK]"},
		{"spublish sch three", "0"},
	})
	for _, want := range []string{"one", "two"} {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Payload != want {
			t.Fatalf("replica subscriber got %v %v, want %q", m, err, want)
		}
	}
	if m, err := ssub.ReceiveMessage(ctx); err != nil || m.Payload != "three" {
		t.Fatalf("replica shard subscriber got %v %v, want three", m, err)
	}
}

// TestReplXReadGroupConsumers: a consumer XREADGROUP creates exists on
// the replica whether the read delivered entries (the XCLAIMs create it)
// with NOACK, or from the history; a ">" read with nothing new creates
// none, on either side, as Redis 7.0.
func TestReplXReadGroupConsumers(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	p.run([]step{
		{"xadd s 1-1 f v", "1-1"}, {"xadd s 2-1 f v", "2-1"}, {"xgroup create s g 0", "OK"},
		{"xreadgroup group g delivered count 1 streams s >", "*"},
		{"xreadgroup group g noack count 1 noack streams s >", "*"},
		{"xreadgroup group g nothing streams s >", "*"},
		{"xreadgroup group g history streams s 0", "*"},
	})
	waitSynced(t, p, r)
	want := "[delivered history noack]"
	for _, e := range []*testEnv{p, r} {
		res, err := e.rdb.XInfoConsumers(context.Background(), "s", "g").Result()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range res {
			names = append(names, c.Name)
		}
		if got := fmt.Sprint(names); got != want {
			t.Errorf("consumers %s, want %s", got, want)
		}
	}
}

// TestShutdown: SHUTDOWN asks the process to stop (Config.Shutdown) and
// closes the connection; it is refused inside MULTI, with bad arguments,
// and by a server without the hook.
func TestShutdown(t *testing.T) {
	stops := make(chan struct{}, 4)
	e := startServer(t, func(c *Config) { c.Shutdown = func() { stops <- struct{}{} } })
	c := e.oneConn()
	e.runWith(c, []step{
		{"shutdown save nosave", "ERR:ERR syntax error"},
		{"shutdown abort now", "ERR:ERR syntax error"},
		{"shutdown bogus", "ERR:ERR syntax error"},
		{"shutdown abort", "ERR:ERR No shutdown in progress."},
		{"multi", "OK"}, {"set foo bar", "QUEUED"},
		{"shutdown", "ERR:ERR Command not allowed inside a transaction"},
		{"exec", "ERR:EXECABORT"}, {"get foo", "nil"},
	})
	if len(stops) != 0 {
		t.Fatal("a refused SHUTDOWN stopped the server")
	}
	if err := c.Do(context.Background(), "shutdown", "nosave").Err(); err == nil {
		t.Error("SHUTDOWN answered; want the connection closed")
	}
	if len(stops) != 1 {
		t.Errorf("SHUTDOWN asked to stop %d times, want 1", len(stops))
	}
	embedded := startServer(t, nil)
	embedded.run([]step{{"shutdown", "ERR:ERR SHUTDOWN is not available"}})
}
