package kv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// oneConn is a client on a single connection, so SELECT lasts between
// its commands.
func (e *testEnv) oneConn() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, DisableIdentity: true, MaxRetries: -1,
		PoolSize: 1, MinIdleConns: 0, ReadTimeout: 5 * time.Second})
	e.t.Cleanup(func() { c.Close() })
	return c
}

func TestDatabaseCommands(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"select", []step{
			{"select 0", "OK"}, {"select 15", "OK"}, {"select 16", "ERR:ERR DB index is out of range"},
			{"select -1", "ERR:ERR DB index is out of range"}, {"select x", "ERR:ERR value is not an integer or out of range"},
			{"config get databases", "map[databases:16]"},
		}},
		{"per-db keyspace", []step{
			{"set a 0", "OK"}, {"select 1", "OK"}, {"get a", "nil"}, {"set a 1", "OK"}, {"set b 1", "OK"},
			{"dbsize", "2"}, {"keys *", "sorted:[a b]"}, {"scan 0 count 100", "*"}, {"exists a b", "2"},
			{"select 0", "OK"}, {"get a", "0"}, {"dbsize", "1"}, {"keys *", "[a]"},
			{"client info", "*"},
		}},
		{"flushdb vs flushall", []step{
			{"set a 0", "OK"}, {"select 2", "OK"}, {"set a 2", "OK"}, {"flushdb", "OK"}, {"dbsize", "0"},
			{"set a 2", "OK"}, {"select 0", "OK"}, {"flushdb", "OK"}, {"select 2", "OK"}, {"get a", "2"},
			{"flushall", "OK"}, {"dbsize", "0"}, {"flushdb x", "ERR:ERR syntax error"},
		}},
		{"move", []step{
			{"set k v", "OK"}, {"expire k 100", "1"}, {"move k 1", "1"}, {"exists k", "0"},
			{"move k 1", "0"}, // gone here
			{"select 1", "OK"}, {"get k", "v"}, {"ttl k", "100"},
			{"set k2 other", "OK"}, {"select 0", "OK"}, {"set k2 mine", "OK"}, {"move k2 1", "0"}, {"get k2", "mine"},
			{"move k2 0", "ERR:ERR source and destination objects are the same"},
			{"move k2 16", "ERR:ERR DB index is out of range"}, {"move k2 x", "ERR:ERR value is not an integer or out of range"},
			{"move k2", "ERR:ERR wrong number of arguments for 'move' command"},
		}},
		{"swapdb", []step{
			{"set a db0", "OK"}, {"rpush l x", "1"}, {"select 3", "OK"}, {"set a db3", "OK"},
			{"swapdb 0 3", "OK"}, {"get a", "db0"}, {"type l", "list"}, {"select 0", "OK"}, {"get a", "db3"},
			{"exists l", "0"}, {"swapdb 0 0", "OK"}, {"swapdb 0 16", "ERR:ERR DB index is out of range"},
			{"swapdb x 1", "ERR:ERR invalid first DB index"}, {"swapdb 1 y", "ERR:ERR invalid second DB index"},
			{"info keyspace", "*"},
		}},
		{"copy db", []step{
			{"hset h f v", "1"}, {"copy h h db 4", "1"}, {"copy h h db 4", "0"}, {"hset h f w", "0"},
			{"copy h h db 4 replace", "1"}, {"copy h h", "ERR:ERR source and destination objects are the same"},
			{"copy h h db 0", "ERR:ERR source and destination objects are the same"},
			{"copy h h db 16", "ERR:ERR DB index is out of range"}, {"copy nokey h db 4", "0"},
			{"select 4", "OK"}, {"hget h f", "w"}, {"copy h h2 db 4", "1"}, {"hget h2 f", "w"},
		}},
		{"reset", []step{{"select 7", "OK"}, {"set r 7", "OK"}, {"reset", "RESET"}, {"get r", "nil"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, nil)
			e.runWith(e.oneConn(), tc.steps)
		})
	}
}

func TestDatabaseInfoAndClientList(t *testing.T) {
	e := startServer(t, nil)
	c := e.oneConn()
	ctx := context.Background()
	e.runWith(c, []step{{"set a 1", "OK"}, {"select 9", "OK"}, {"set a 1", "OK"}, {"set b 1", "OK"}, {"expire b 100", "1"}})
	info := c.Info(ctx, "keyspace").Val()
	for _, want := range []string{"db0:keys=1,expires=0,avg_ttl=0", "db9:keys=2,expires=1,avg_ttl=0"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO keyspace lacks %q:\n%s", want, info)
		}
	}
	if ci := c.Do(ctx, "client", "info").String(); !strings.Contains(ci, " db=9 ") {
		t.Errorf("CLIENT INFO: %s", ci)
	}
}

func TestDatabasesClusterMode(t *testing.T) {
	if _, err := New(Config{Cluster: &fakeHook{}, Databases: 16, AppendFsync: "no"}); err == nil {
		t.Fatal("a cluster node with 16 databases was accepted")
	}
	e := startServer(t, func(c *Config) { c.Cluster = benchHook{} })
	e.runWith(e.oneConn(), []step{
		{"select 0", "OK"}, {"select 1", "ERR:ERR SELECT is not allowed in cluster mode"},
		{"config get databases", "map[databases:1]"}, {"set k v", "OK"},
		{"move k 1", "ERR:ERR MOVE is not allowed in cluster mode"},
		{"swapdb 0 1", "ERR:ERR SWAPDB is not allowed in cluster mode"},
		{"copy k k2 db 1", "ERR:ERR Copying to another database is not allowed in cluster mode"},
	})
	one := startServer(t, func(c *Config) { c.Databases = 1 })
	one.runWith(one.oneConn(), []step{{"select 1", "ERR:ERR DB index is out of range"}, {"move k 1", "ERR:ERR DB index is out of range"}})
}

func TestDatabaseTransactions(t *testing.T) {
	e := startServer(t, nil)
	a, b := e.oneConn(), e.oneConn()
	e.runWith(a, []step{
		{"multi", "OK"}, {"set x 0", "QUEUED"}, {"select 1", "QUEUED"}, {"set x 1", "QUEUED"},
		{"exec", "[OK OK OK]"}, {"get x", "1"}, // SELECT inside MULTI lasts, as in Redis
		{"select 0", "OK"}, {"get x", "0"},
		// a WATCH in database 1 fails on a change there, not on one in database 0
		{"select 1", "OK"}, {"watch x", "OK"},
	})
	e.runWith(b, []step{{"set x changed-in-0", "OK"}})
	e.runWith(a, []step{{"multi", "OK"}, {"incr n", "QUEUED"}, {"exec", "[1]"}})
	e.runWith(a, []step{{"watch x", "OK"}})
	e.runWith(b, []step{{"select 1", "OK"}, {"set x changed-in-1", "OK"}})
	e.runWith(a, []step{{"multi", "OK"}, {"incr n", "QUEUED"}, {"exec", "nil"}, {"get n", "1"}})
	// a WATCH in another database than EXEC's, and MOVE inside MULTI
	e.runWith(a, []step{{"watch x", "OK"}, {"select 2", "OK"}, {"set m v", "OK"}, {"multi", "OK"},
		{"move m 1", "QUEUED"}, {"exec", "[1]"}, {"select 1", "OK"}, {"get m", "v"}})
}

func TestDatabaseScripts(t *testing.T) {
	e := startServer(t, nil)
	e.runWith(e.oneConn(), []step{
		{"select 2", "OK"},
		{"eval return(redis.call('set',KEYS[1],'s')) 1 k", "OK"}, {"get k", "s"},
		{"eval return(redis.call('select','2')) 0", "OK"},
		{"eval return(redis.call('select','16')) 0", "ERR:ERR DB index is out of range"},
		// SELECT in a script moves its following commands only: the
		// caller stays in database 2
		{"eval redis.call('select','3');redis.call('set','k3','x');return(redis.call('get','k3')) 0", "x"},
		{"get k3", "nil"}, {"eval return(redis.call('exists','k3')) 0", "0"},
		// a script that wrote before it SELECTs takes the other databases
		// without running again
		{"eval redis.call('set',KEYS[1],'w');redis.call('select','4');return(redis.call('set',KEYS[1],'w4')) 1 k4", "OK"},
		{"eval redis.call('set',KEYS[1],'w');redis.call('select','4');return(redis.call('set',KEYS[1],'w4')) 1 k4", "OK"},
		{"get k4", "w"},
		// MOVE, SWAPDB and FLUSHALL reach other databases too
		{"set mv m", "OK"}, {"eval return(redis.call('move',KEYS[1],'3')) 1 mv", "1"}, {"get mv", "nil"},
		{"eval return(redis.call('swapdb','3','5')) 0", "OK"},
		// inside MULTI, the caller's database stays as well
		{"multi", "OK"}, {"eval redis.call('select','6');return(redis.call('set','t','6')) 0", "QUEUED"},
		{"set t 2", "QUEUED"}, {"exec", "[OK OK]"}, {"get t", "2"}, {"del t", "1"},
		{"select 3", "OK"}, {"get k3", "nil"}, {"get mv", "nil"},
		{"select 5", "OK"}, {"get k3", "x"}, {"get mv", "m"},
		{"select 4", "OK"}, {"get k4", "w4"}, {"select 6", "OK"}, {"get t", "6"}, {"flushall", "OK"},
		{"select 2", "OK"}, {"set k s", "OK"},
		// declared-key locking in database 2, the fallback to every shard
		// of database 2 on an undeclared key, FLUSHDB of database 2 only
		{"eval redis.call('set',KEYS[1],'a');redis.call('set',ARGV[1],'b');return(redis.call('get',ARGV[1])) 1 k other", "b"},
		{"eval return(redis.call('dbsize')) 1 k", "2"},
		{"select 0", "OK"}, {"get k", "nil"}, {"get other", "nil"}, {"set z 0", "OK"},
		{"select 2", "OK"}, {"eval redis.call('flushdb');return(redis.call('dbsize')) 1 k", "0"},
		{"select 0", "OK"}, {"get z", "0"},
		// a script known not to SELECT runs in EXEC under the usual locks;
		// when it SELECTs all the same, that command fails, and the next
		// EXEC of it locks every database
		{"select 2", "OK"},
		{"eval redis.call('select',ARGV[1]);return(redis.call('set','t','x')) 0 2", "OK"},
		{"multi", "OK"}, {"eval redis.call('select',ARGV[1]);return(redis.call('set','t','x')) 0 7", "QUEUED"},
		{"exec", "[ERR(ERR Script reached another database inside MULTI for the first time; EXEC locks every database for it from now on script: afd83d16d20a8f8b8b154d017b4a7ef1f2b31d75, on @user_script:1.)]"},
		{"multi", "OK"}, {"eval redis.call('select',ARGV[1]);return(redis.call('set','t','x')) 0 7", "QUEUED"}, {"exec", "[OK]"},
		{"select 7", "OK"}, {"get t", "x"},
	})
}

func TestDatabaseNotifications(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	e.rdb.ConfigSet(ctx, "notify-keyspace-events", "KEA")
	sub := e.rdb.PSubscribe(ctx, "__key*__:*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	e.runWith(e.oneConn(), []step{{"select 3", "OK"}, {"set k v", "OK"}, {"move k 5", "1"}})
	want := []string{
		"__keyspace@3__:k set", "__keyevent@3__:set k",
		"__keyspace@3__:k move_from", "__keyevent@3__:move_from k",
		"__keyspace@5__:k move_to", "__keyevent@5__:move_to k",
	}
	for _, w := range want {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := sub.ReceiveMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for %q: %v", w, err)
		}
		if got := m.Channel + " " + m.Payload; got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
}

func TestDatabaseBlocking(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	blocker := e.oneConn()
	e.runWith(blocker, []step{{"select 1", "OK"}})
	got := make(chan string, 1)
	go func() {
		v, err := blocker.BLPop(ctx, 5*time.Second, "q").Result()
		got <- fmt.Sprint(v, err)
	}()
	time.Sleep(100 * time.Millisecond)
	w := e.oneConn()
	e.runWith(w, []step{{"rpush q in-db-0", "1"}}) // another database: not for the blocked client
	select {
	case v := <-got:
		t.Fatalf("BLPOP in database 1 served from database 0: %s", v)
	case <-time.After(200 * time.Millisecond):
	}
	e.runWith(w, []step{{"move q 1", "1"}})
	select {
	case v := <-got:
		if v != "[q in-db-0] <nil>" {
			t.Fatalf("BLPOP: %s", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("BLPOP in database 1 not woken by MOVE into it")
	}
}

// dbData reads every database's keys and values (strings) through one
// connection.
func dbData(t *testing.T, c *redis.Client, dbs int) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for db := 0; db < dbs; db++ {
		if err := c.Do(ctx, "select", db).Err(); err != nil {
			t.Fatal(err)
		}
		for _, k := range c.Keys(ctx, "*").Val() {
			out[fmt.Sprintf("%d/%s", db, k)] = c.Type(ctx, k).Val() + ":" + c.Dump(ctx, k).Val()
		}
	}
	c.Do(ctx, "select", 0)
	return out
}

func TestDatabasesPersist(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) { c.DataDir = dir; c.AppendFsync = "always" }
	e := startServer(t, mod)
	c := e.oneConn()
	steps := []step{
		{"set a 0", "OK"}, {"select 3", "OK"}, {"set a 3", "OK"}, {"rpush l x y", "2"}, {"select 5", "OK"},
		{"set m 5", "OK"}, {"move m 6", "1"}, {"copy m m db 3", "0"}, {"select 6", "OK"}, {"copy m m db 3", "1"},
		{"swapdb 3 7", "OK"}, {"select 8", "OK"}, {"set f 8", "OK"}, {"select 9", "OK"}, {"set f 9", "OK"}, {"flushdb", "OK"},
		{"multi", "OK"}, {"set t 9", "QUEUED"}, {"select 10", "QUEUED"}, {"set t 10", "QUEUED"}, {"exec", "[OK OK OK]"},
		{"eval return(redis.call('set','s','10')) 0", "OK"},
		// a script that locks its declared key's shard in database 10, then
		// writes an undeclared key; one that writes once (no MULTI wrapper)
		{"eval redis.call('set',KEYS[1],'d');redis.call('set','u','10');return(redis.call('get','u')) 1 d", "10"},
		{"select 11", "OK"}, {"eval return(redis.call('set',KEYS[1],'11')) 1 e", "OK"},
		// a script that SELECTs: its writes in databases 11, 12 and 13,
		// the caller's next write in 11
		{"eval redis.call('set',KEYS[1],'11');redis.call('select','12');redis.call('set','g','12');redis.call('select','13');return(redis.call('set','g','13')) 1 g", "OK"},
		{"set h 11", "OK"},
		{"eval redis.call('select','14');return(redis.call('set','one','14')) 0", "OK"}, {"set h2 11", "OK"},
	}
	e.runWith(c, steps)
	before := dbData(t, c, 16)
	if len(before) != 18 {
		t.Fatalf("%d keys before the restart: %v", len(before), before)
	}
	e.srv.Close()
	// the log selects databases as Redis's does
	logs, _ := filepath.Glob(filepath.Join(dir, "log.*.aof"))
	if len(logs) != 1 {
		t.Fatalf("logs: %v", logs)
	}
	data, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(data), "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n") {
		t.Errorf("the log has no SELECT 3:\n%q", data)
	}
	e2 := startServer(t, mod)
	after := dbData(t, e2.oneConn(), 16)
	assertSameData(t, "after a restart", before, after)

	// a rewrite writes each database in the snapshot and starts a new log
	c2 := e2.oneConn()
	e2.runWith(c2, []step{{"bgrewriteaof", "*"}})
	waitRewrite(t, e2)
	e2.runWith(c2, []step{{"select 12", "OK"}, {"set late 12", "OK"}})
	want := dbData(t, c2, 16)
	e2.srv.Close()
	e3 := startServer(t, mod)
	assertSameData(t, "after a rewrite and a restart", want, dbData(t, e3.oneConn(), 16))
}

func waitRewrite(t *testing.T, e *testEnv) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		if strings.Contains(e.rdb.Info(ctx, "persistence").Val(), "aof_rewrite_in_progress:0") {
			return
		}
		if i == 500 {
			t.Fatal("rewrite did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func assertSameData(t *testing.T, when string, want, got map[string]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d keys, want %d: %v", when, len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", when, k, got[k], v)
		}
	}
}

// TestDatabaseKill9 kills a peer with SIGKILL after writes in database 3
// acknowledged with appendfsync always: they are there after a restart.
func TestDatabaseKill9(t *testing.T) {
	bin, err := buildGantry()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startPeer(t, bin, dir, "always")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: p.addr, DisableIdentity: true, MaxRetries: -1, DB: 3, PoolSize: 1})
	const n = 300
	for i := 0; i < n; i++ {
		if err := c.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	p.cmd.Process.Kill() // SIGKILL
	p.cmd.Wait()
	p2 := startPeer(t, bin, dir, "always")
	defer func() {
		p2.cmd.Process.Kill()
		p2.cmd.Wait()
	}()
	c3 := redis.NewClient(&redis.Options{Addr: p2.addr, DisableIdentity: true, DB: 3, PoolSize: 1})
	defer c3.Close()
	for i := 0; i < n; i++ {
		v, err := c3.Get(ctx, fmt.Sprintf("k%d", i)).Int()
		if err != nil || v != i {
			t.Fatalf("k%d in database 3 after kill -9: %v %v\n%s", i, v, err, p2.out.String())
		}
	}
	c0 := redis.NewClient(&redis.Options{Addr: p2.addr, DisableIdentity: true, PoolSize: 1})
	defer c0.Close()
	if n := c0.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("database 0 has %d keys", n)
	}
}

// TestDatabaseReplica: a replica gets database 5's keys by the full
// sync's snapshot and then by the stream, SWAPDB and MOVE included, and
// goes on in the right database after a partial resync.
func TestDatabaseReplica(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	pc := p.oneConn()
	p.runWith(pc, []step{{"set a 0", "OK"}, {"select 5", "OK"}, {"set a 5", "OK"}, {"hset h f v", "1"}})
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	p.runWith(pc, []step{{"set b 5", "OK"}, {"move b 6", "1"}, {"set c 5", "OK"}, {"swapdb 6 7", "OK"},
		// scripts in database 8: declared keys only, one undeclared write,
		// and a one-write transaction (logged without MULTI/EXEC)
		{"select 8", "OK"}, {"eval return(redis.call('set',KEYS[1],'8')) 1 s", "OK"},
		{"eval redis.call('incr',KEYS[1]);return(redis.call('set','u','8')) 1 n", "OK"},
		{"multi", "OK"}, {"set t 8", "QUEUED"}, {"exec", "[OK]"},
		// a script that SELECTs, then the caller's write in database 8
		{"eval redis.call('set','x','8');redis.call('select','9');redis.call('incr','x');redis.call('select','10');return(redis.call('incr','x')) 0", "1"},
		{"set after 8", "OK"},
		{"eval redis.call('select','11');return(redis.call('set','one','11')) 0", "OK"}, {"set after2 8", "OK"},
		{"select 5", "OK"}})
	waitSynced(t, p, r)
	rc := r.oneConn()
	assertSameData(t, "on the replica", dbData(t, pc, 16), dbData(t, rc, 16))
	p.runWith(pc, []step{{"select 5", "OK"}})

	// a partial resync goes on in the database the stream was in
	r.srv.ReplicaOf("")
	p.runWith(pc, []step{{"set d 5", "OK"}})
	r.srv.ReplicaOf(p.addr)
	waitSynced(t, p, r)
	p.runWith(pc, []step{{"set e 5", "OK"}})
	waitSynced(t, p, r)
	assertSameData(t, "after a partial resync", dbData(t, pc, 16), dbData(t, rc, 16))
}
