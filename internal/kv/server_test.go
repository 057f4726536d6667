package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestServerCommands(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"PING", "PONG"},
		{"PING hello", "hello"},
		{"PING a b", "ERR:ERR wrong number of arguments for 'ping' command"},
		{"ECHO hi", "hi"},
		{"SELECT 0", "OK"},
		{"SELECT 16", "ERR:ERR DB index is out of range"}, // standalone: databases 16
		{"SELECT x", "ERR:ERR value is not an integer or out of range"},
		{"AUTH pw", "ERR:ERR AUTH <password> called without any password configured"},
		{"CLIENT SETNAME conn1", "OK"},
		{"CLIENT GETNAME", "conn1"},
		{"CLIENT SETNAME bad name", "ERR:ERR wrong number of arguments"},
		{"CLIENT SETINFO LIB-NAME mylib", "OK"},
		{"CLIENT SETINFO FOO x", "ERR:ERR Unrecognized option 'FOO'"},
		{"CLIENT ID", "*"},
		{"CLIENT NOPE", "ERR:ERR unknown subcommand 'NOPE'. Try CLIENT HELP."},
		{"CONFIG GET appendfsync", "[appendfsync everysec]"},
		{"CONFIG GET append*", "[appenddirname appendonlydir appendfilename appendonly appendfsync everysec appendonly no]"},
		{"CONFIG GET nosuch", "[]"},
		{"CONFIG SET appendfsync always", "OK"},
		{"CONFIG GET appendfsync", "[appendfsync always]"},
		{"CONFIG SET appendfsync sometimes", "ERR:ERR CONFIG SET failed (possibly related to argument 'appendfsync')"},
		{"CONFIG SET nosuch 1", "ERR:ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"},
		{"CONFIG SET port 1", "ERR:ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port."},
		{"CONFIG SET save \"\"", "OK"},
		{"CONFIG NOPE", "ERR:ERR unknown subcommand 'NOPE'. Try CONFIG HELP."},
		{"COMMAND COUNT", fmt.Sprint(e.srv.cmds.Len())},
		{"COMMAND INFO get nosuch", "[[get 2 [readonly fast] 1 1 1 [@read @string @fast] [] [[flags [RO access] begin_search [type index spec [index 1]] find_keys [type range spec [lastkey 0 keystep 1 limit 0]]]] []] nil]"},
		{"COMMAND GETKEYS MSET a 1 b 2", "[a b]"},
		{"COMMAND GETKEYS LMPOP 2 x y LEFT", "[x y]"},
		{"COMMAND GETKEYS PING", "ERR:ERR wrong number of arguments for 'command|getkeys' command"},
		{"COMMAND GETKEYS PING hello", "ERR:ERR The command has no key arguments"},
		{"TIME", "[1767225600 0]"},
		{"LASTSAVE", "*"},
		{"SAVE", "ERR:ERR no data directory configured"},
		{"NOSUCH a b", "ERR:ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "},
	})
	info, err := e.rdb.Info(context.Background(), "keyspace", "persistence").Result()
	if err != nil || !strings.Contains(info, "# Persistence") || strings.Contains(info, "# Server") {
		t.Fatalf("INFO = %q, %v", info, err)
	}
	info = e.rdb.Info(context.Background()).Val()
	for _, s := range []string{"redis_version:", "connected_clients:", "used_memory:", "aof_enabled:"} {
		if !strings.Contains(info, s) {
			t.Errorf("INFO lacks %s", s)
		}
	}
	cmds, err := e.rdb.Command(context.Background()).Result()
	if err != nil || cmds["zadd"] == nil || cmds["zadd"].Arity != -4 || cmds["zadd"].FirstKeyPos != 1 {
		t.Fatalf("COMMAND: %v %v", cmds["zadd"], err)
	}
	docs, err := e.rdb.Do(context.Background(), "COMMAND", "DOCS", "get").Result()
	if err != nil || !strings.Contains(fmt.Sprint(docs), "summary") {
		t.Fatalf("COMMAND DOCS: %v, %v", docs, err)
	}
}

func TestAuth(t *testing.T) {
	e := startServer(t, func(c *Config) { c.RequirePass = "secret" })
	r := e.raw()
	r.roundTrip("GET k\r\n", "-NOAUTH Authentication required.\r\n")
	r.roundTrip("HELLO 3\r\n", "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n")
	r.roundTrip("AUTH wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	r.roundTrip("AUTH other secret\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	r.roundTrip("AUTH default secret\r\n", "+OK\r\n")
	r.roundTrip("GET k\r\n", "$-1\r\n")
	r.roundTrip("RESET\r\n", "+RESET\r\n")
	r.roundTrip("GET k\r\n", "-NOAUTH Authentication required.\r\n")
	c := redis.NewClient(&redis.Options{Addr: e.addr, Password: "secret", Protocol: 3, DisableIdentity: true})
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	bad := redis.NewClient(&redis.Options{Addr: e.addr, Password: "nope", Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer bad.Close()
	if err := bad.Get(context.Background(), "k").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestRESP3(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip("HELLO 4\r\n", "-NOPROTO unsupported protocol version\r\n")
	hello := "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
	r.roundTrip("HELLO 3\r\n", hello)
	r.roundTrip("GET nokey\r\n", "_\r\n")
	r.roundTrip("HSET h f v\r\n", ":1\r\n")
	r.roundTrip("HGETALL h\r\n", "%1\r\n$1\r\nf\r\n$1\r\nv\r\n")
	r.roundTrip("SADD s m\r\n", ":1\r\n")
	r.roundTrip("SMEMBERS s\r\n", "~1\r\n$1\r\nm\r\n")
	r.roundTrip("ZADD z 1.5 a\r\n", ":1\r\n")
	r.roundTrip("ZSCORE z a\r\n", ",1.5\r\n")
	r.roundTrip("ZRANGE z 0 -1 WITHSCORES\r\n", "*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n")
	r.roundTrip("LPOP nokey 2\r\n", "_\r\n")
	r.roundTrip("HELLO 2\r\n", strings.Replace(strings.Replace(hello, "%7", "*14", 1), ":3", ":2", 1))
	r.roundTrip("GET nokey\r\n", "$-1\r\n")
	r.roundTrip("ZSCORE z a\r\n", "$3\r\n1.5\r\n")

	c := e.client(3)
	ctx := context.Background()
	c.HSet(ctx, "h2", "a", "1", "b", "2")
	m, err := c.HGetAll(ctx, "h2").Result()
	if err != nil || len(m) != 2 || m["b"] != "2" {
		t.Fatalf("RESP3 HGETALL = %v %v", m, err)
	}
	zs, err := c.ZRangeWithScores(ctx, "z", 0, -1).Result()
	if err != nil || len(zs) != 1 || zs[0].Score != 1.5 {
		t.Fatalf("RESP3 ZRANGE WITHSCORES = %v %v", zs, err)
	}
	if _, err := c.Get(ctx, "nokey").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("RESP3 GET missing = %v", err)
	}
}

func TestProtocol(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	// inline commands, with quotes as redis-cli sends them
	r.roundTrip("SET k \"a b\\x41\"\r\n", "+OK\r\n")
	r.roundTrip("GET k\r\n", "$4\r\na bA\r\n")
	r.roundTrip("\r\n", "")
	r.roundTrip("PING\n", "+PONG\r\n")
	// a pipeline gets all its replies
	r.roundTrip("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2\r\n12\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n",
		"+PONG\r\n$0\r\n\r\n+OK\r\n:13\r\n")
	// a command split over several writes
	r.roundTrip("*2\r\n$3\r\nGET", "")
	r.roundTrip("\r\n$1\r\nx\r\n", "$2\r\n13\r\n")
	r.roundTrip("QUIT\r\n", "+OK\r\n")

	r2 := e.raw()
	r2.roundTrip("*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n")
	r3 := e.raw()
	r3.roundTrip("*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n")
	r4 := e.raw()
	r4.roundTrip("*a\r\n", "-ERR Protocol error: invalid multibulk length\r\n")

	// a large value across many reads
	ctx := context.Background()
	big := strings.Repeat("x", 1<<20)
	if err := e.rdb.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v := e.rdb.Get(ctx, "big").Val(); v != big {
		t.Fatalf("big value corrupted (%d bytes)", len(v))
	}
	// a go-redis pipeline of many commands
	p := e.rdb.Pipeline()
	for i := 0; i < 1000; i++ {
		p.Incr(ctx, "cnt")
	}
	cmds, err := p.Exec(ctx)
	if err != nil || len(cmds) != 1000 || cmds[999].(*redis.IntCmd).Val() != 1000 {
		t.Fatalf("pipeline: %v", err)
	}
}
