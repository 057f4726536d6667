package kv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// conn1 is a client of one connection, so AUTH holds for its commands.
func (e *testEnv) conn1() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, Protocol: 2, DisableIdentity: true,
		MaxRetries: -1, PoolSize: 1, ReadTimeout: 5 * time.Second})
	e.t.Cleanup(func() { c.Close() })
	return c
}

// getUser returns ACL GETUSER's fields as strings (lists joined by
// spaces) and the selectors.
func getUser(t *testing.T, c *redis.Client, name string) (map[string]string, []map[string]string) {
	t.Helper()
	res, err := c.Do(context.Background(), "ACL", "GETUSER", name).Result()
	if err != nil {
		t.Fatalf("ACL GETUSER %s: %v", name, err)
	}
	fields := map[string]string{}
	var sels []map[string]string
	arr := res.([]any)
	for i := 0; i+1 < len(arr); i += 2 {
		k := arr[i].(string)
		switch v := arr[i+1].(type) {
		case string:
			fields[k] = v
		case []any:
			if k == "selectors" {
				for _, s := range v {
					m := map[string]string{}
					sa := s.([]any)
					for j := 0; j+1 < len(sa); j += 2 {
						m[sa[j].(string)] = sa[j+1].(string)
					}
					sels = append(sels, m)
				}
				continue
			}
			parts := make([]string, len(v))
			for j, x := range v {
				parts[j] = x.(string)
			}
			fields[k] = strings.Join(parts, " ")
		}
	}
	return fields, sels
}

// The cases of Redis's tests/unit/acl.tcl (users, passwords, commands,
// keys, subcommands, GETUSER, LOG, DELUSER, GENPASS).
func TestACLUsersAndPasswords(t *testing.T) {
	e := startServer(t, nil)
	r := e.conn1()
	e.runWith(r, []step{
		{"ACL WHOAMI", "default"},
		{"ACL SETUSER newuser", "OK"},
	})
	if err := r.Do(context.Background(), "ACL", "SETUSER", "a a").Err(); err == nil ||
		!strings.Contains(err.Error(), "Usernames can't contain spaces or null characters") {
		t.Errorf("user with a space: %v", err)
	}
	e.runWith(r, []step{
		{"ACL SETUSER newuser >passwd1", "OK"},
		{"AUTH newuser passwd1", "ERR:WRONGPASS"}, // new users start off
		{"ACL SETUSER newuser on +acl", "OK"},
		{"AUTH newuser passwd1", "OK"},
		{"ACL WHOAMI", "newuser"},
		{"ACL SETUSER newuser >passwd2", "OK"},
		{"AUTH newuser passwd1", "OK"},
		{"AUTH newuser passwd2", "OK"},
		{"AUTH newuser passwd3", "ERR:WRONGPASS"},
		{"ACL SETUSER newuser <passwd1", "OK"},
		{"AUTH newuser passwd1", "ERR:WRONGPASS"},
		{"ACL SETUSER newuser #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6", "OK"},
		{"AUTH newuser passwd4", "OK"},
		{"ACL SETUSER newuser #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e", "ERR:ERR Error in ACL SETUSER modifier"},
		{"ACL SETUSER newuser #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4eq", "ERR:ERR Error in ACL SETUSER modifier"},
		{"ACL SETUSER newuser <nosuch", "ERR:ERR Error in ACL SETUSER modifier '<nosuch': The password you are trying to remove from the user does not exist"},
	})
	u, _ := getUser(t, r, "newuser")
	if !strings.Contains(u["passwords"], "34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6") || strings.Contains(u["passwords"], "passwd4") {
		t.Errorf("GETUSER passwords: %q", u["passwords"])
	}
	e.runWith(r, []step{
		{"ACL SETUSER newuser !34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6", "OK"},
	})
	u, _ = getUser(t, r, "newuser")
	if strings.Contains(u["passwords"], "34344e4d") {
		t.Errorf("hash not removed: %q", u["passwords"])
	}
	e.runWith(r, []step{
		{"SET foo bar", "ERR:NOPERM this user has no permissions to run the 'set' command"},
		{"ACL SETUSER newuser +set", "OK"},
		{"SET foo bar", "ERR:NOPERM this user has no permissions to access one of the keys used as arguments"},
		{"ACL SETUSER newuser allcommands ~foo:* ~bar:*", "OK"},
		{"SET foo:1 a", "OK"},
		{"SET bar:2 b", "OK"},
		{"SET zap:3 c", "ERR:NOPERM this user has no permissions to access one of the keys"},
		{"ACL SETUSER newuser allkeys", "OK"},
		{"SET zap:3 c", "OK"},
		{"ACL SETUSER newuser nopass", "OK"},
		{"AUTH newuser zipzapblabla", "OK"},
		{"ACL SETUSER newuser -ping", "OK"},
		{"INCR mycounter", "1"},
		{"PING", "ERR:NOPERM this user has no permissions to run the 'ping' command"},
		{"ACL SETUSER newuser -@all +@set +acl", "OK"},
		{"SADD myset a b c", "3"},
		{"ACL SETUSER newuser +@all -@string", "OK"},
		{"SADD myset a b c", "0"},
		{"SET foo bar", "ERR:NOPERM this user has no permissions to run the 'set' command"},
		{"ACL SETUSER newuser allcommands", "OK"},
		{"SET foo bar", "OK"},
	})
}

func TestACLSubcommands(t *testing.T) {
	e := startServer(t, nil)
	r := e.conn1()
	e.run([]step{
		{"ACL SETUSER newuser on nopass allkeys allchannels", "OK"},
		{"ACL SETUSER newuser +@all -client", "OK"},
		{"ACL SETUSER newuser +client|id +client|setname", "OK"},
	})
	e.runWith(r, []step{
		{"AUTH newuser x", "OK"},
		{"CLIENT ID", "*"},
		{"CLIENT SETNAME foo", "OK"},
		{"CLIENT LIST", "ERR:NOPERM this user has no permissions to run the 'client|list' command"},
	})
	u, _ := getUser(t, e.rdb, "newuser")
	for _, want := range []string{"+@all", "-client", "+client|id", "+client|setname"} {
		if !strings.Contains(u["commands"], want) {
			t.Errorf("commands %q lack %q", u["commands"], want)
		}
	}
	e.run([]step{{"ACL SETUSER newuser +@all -client|list", "OK"}})
	e.runWith(r, []step{
		{"CLIENT ID", "*"},
		{"CLIENT LIST", "ERR:NOPERM this user has no permissions to run the 'client|list' command"},
		{"ACL SETUSER newuser -@all +acl +config -config|set", "OK"},
		{"CONFIG GET maxmemory", "*"},
		{"CONFIG SET maxmemory 0", "ERR:NOPERM this user has no permissions to run the 'config|set' command"},
		{"ACL SETUSER newuser +@all -config|get", "OK"},
		{"ACL SETUSER newuser +config|get|appendonly", "ERR:ERR Error in ACL SETUSER modifier '+config|get|appendonly': Allowing first-arg of a subcommand is not supported"},
		{"ACL SETUSER newuser +@all +config|asdf", "ERR:ERR Error in ACL SETUSER modifier '+config|asdf': Unknown command or category name in ACL"},
		{"ACL SETUSER newuser +@all -config|asdf", "ERR:ERR Error in ACL SETUSER modifier '-config|asdf': Unknown command or category name in ACL"},
		{"ACL SETUSER newuser +@all +get|key1|key2", "ERR:ERR Error in ACL SETUSER modifier '+get|key1|key2': Unknown command or category name in ACL"},
		{"ACL SETUSER newuser -@all +acl +@stream", "OK"},
		{"XADD key * field value", "*"},
		{"XINFO STREAM key", "*"},
		{"ACL SETUSER newuser -@all +acl +select|0", "OK"},
		{"SELECT 0", "OK"},
		{"SELECT 1", "ERR:NOPERM this user has no permissions to run the 'select' command"},
	})
	u, _ = getUser(t, r, "newuser")
	if !strings.Contains(u["commands"], "+select|0") {
		t.Errorf("commands %q lack +select|0", u["commands"])
	}
}

// GETUSER describes commands from the bitmap as Redis 7 does.
func TestACLDescribeCommands(t *testing.T) {
	e := startServer(t, nil)
	r := e.rdb
	tests := []struct{ rules, want string }{
		{"+object|encoding", "-@all +object|encoding"},
		{"+object|encoding +object", "-@all +object"},
		{"+@all +client|id", "+@all"},
		{"+@all -object|encoding", "+@all -object|encoding"},
		{"+@all -object", "+@all -object"},
		{"-@all", "-@all"},
		{"-@all +get +get", "-@all +get"},
		{"-@all +client|id +client", "-@all +client"},
		{"+@all -@string +get", "+@all -@string +get"},
		{"-@all +select|0", "-@all +select|0"},
		{"-@all +select|0 +select", "-@all +select"},
		{"-@all +@string -@string", "-@all"},
		{"+@all -client +client|id -client|id", "+@all -client"},
		{"-@all +get -get", "-@all"},
		{"+@all -@string +@string", "+@all"},
		{"-@all +client -client|kill", "-@all +client -client|kill"},
	}
	for _, tt := range tests {
		args := []any{"ACL", "SETUSER", "u", "reset"}
		for _, f := range strings.Fields(tt.rules) {
			args = append(args, f)
		}
		if err := r.Do(context.Background(), args...).Err(); err != nil {
			t.Fatalf("%s: %v", tt.rules, err)
		}
		u, _ := getUser(t, r, "u")
		if u["commands"] != tt.want {
			t.Errorf("%s: commands %q, want %q", tt.rules, u["commands"], tt.want)
		}
	}
	cats, err := r.Do(context.Background(), "ACL", "CAT").StringSlice()
	if err != nil || len(cats) != 21 {
		t.Fatalf("ACL CAT: %v %v", cats, err)
	}
	for _, cat := range cats {
		if n, _ := r.Do(context.Background(), "ACL", "CAT", cat).Slice(); len(n) == 0 {
			continue // no command of it yet (pubsub, scripting): described as +@all or -@all
		}
		for _, tt := range []struct{ start, rule string }{{"+@all", "-@" + cat}, {"-@all", "+@" + cat}} {
			if err := r.Do(context.Background(), "ACL", "SETUSER", "u", "reset", tt.start, tt.rule).Err(); err != nil {
				t.Fatal(err)
			}
			u, _ := getUser(t, r, "u")
			if want := tt.start + " " + tt.rule; u["commands"] != want {
				t.Errorf("commands %q, want %q", u["commands"], want)
			}
		}
	}
	e.run([]step{
		{"ACL CAT NON_EXISTS", "ERR:ERR Unknown category 'NON_EXISTS'"},
		{"ACL CAT NON_EXISTS NON_EXISTS2", "ERR:ERR unknown subcommand or wrong number of arguments for 'CAT'"},
	})
	has := func(cat, cmd string) bool {
		list, err := r.Do(context.Background(), "ACL", "CAT", cat).StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if c == cmd {
				return true
			}
		}
		return false
	}
	if !has("transaction", "multi") || has("keyspace", "set") || has("stream", "get") || !has("string", "set") {
		t.Error("ACL CAT lists the wrong commands")
	}
}

func TestACLLog(t *testing.T) {
	e := startServer(t, nil)
	r := e.conn1()
	admin := e.rdb
	ctx := context.Background()
	e.runWith(admin, []step{
		{"ACL SETUSER antirez on >foo -@all +set +get +multi +exec ~object:1234", "OK"},
		{"ACL LOG RESET", "OK"},
	})
	e.runWith(r, []step{
		{"AUTH antirez foo", "OK"},
		{"GET foo", "ERR:NOPERM"},
		{"GET object:1234", "nil"},
		{"INCR foo", "ERR:NOPERM"},
	})
	entries, err := admin.Do(ctx, "ACL", "LOG").Slice()
	if err != nil || len(entries) != 2 {
		t.Fatalf("ACL LOG: %v %v", entries, err)
	}
	logEntry := func(i int) map[string]any {
		m := map[string]any{}
		a := entries[i].([]any)
		for j := 0; j+1 < len(a); j += 2 {
			m[a[j].(string)] = a[j+1]
		}
		return m
	}
	if m := logEntry(0); m["reason"] != "command" || m["object"] != "incr" || m["username"] != "antirez" || m["context"] != "toplevel" {
		t.Errorf("newest entry: %v", m)
	}
	if m := logEntry(1); m["reason"] != "key" || m["object"] != "foo" || !strings.Contains(m["client-info"].(string), "user=antirez") {
		t.Errorf("older entry: %v", m)
	}
	// similar refusals count in one entry
	for i := 0; i < 3; i++ {
		r.Do(ctx, "GET", "foo")
	}
	entries, _ = admin.Do(ctx, "ACL", "LOG").Slice()
	if m := logEntry(0); m["object"] != "foo" || m["count"] != int64(4) {
		t.Errorf("grouped entry: %v", m)
	}
	// transactions: the refusal at EXEC is logged in context multi
	e.runWith(r, []step{
		{"MULTI", "OK"},
		{"GET object:1234", "QUEUED"},
	})
	e.runWith(admin, []step{{"ACL SETUSER antirez -get", "OK"}, {"ACL LOG RESET", "OK"}})
	// go-redis reports the array's error element as the error
	if res, err := r.Do(ctx, "EXEC").Slice(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("EXEC: %v %v, want the NOPERM of GET", res, err)
	}
	entries, _ = admin.Do(ctx, "ACL", "LOG").Slice()
	if len(entries) != 1 || logEntry(0)["context"] != "multi" {
		t.Errorf("multi entry: %v", entries)
	}
	// failed AUTH
	e.runWith(admin, []step{{"ACL LOG RESET", "OK"}})
	e.runWith(r, []step{{"AUTH antirez wrong", "ERR:WRONGPASS"}})
	entries, _ = admin.Do(ctx, "ACL", "LOG").Slice()
	if m := logEntry(0); len(entries) != 1 || m["reason"] != "auth" || m["object"] != "AUTH" || m["username"] != "antirez" {
		t.Errorf("auth entry: %v", entries)
	}
	// a count argument, and the log's limit
	e.runWith(admin, []step{{"ACL LOG RESET", "OK"}, {"CONFIG SET acllog-max-len 5", "OK"}})
	for i := 0; i < 10; i++ {
		r.Do(ctx, "AUTH", "user"+string(rune('a'+i)), "x")
	}
	if n, _ := admin.Do(ctx, "ACL", "LOG").Slice(); len(n) != 5 {
		t.Errorf("log of %d entries, want 5 (acllog-max-len)", len(n))
	}
	if n, _ := admin.Do(ctx, "ACL", "LOG", "2").Slice(); len(n) != 2 {
		t.Errorf("ACL LOG 2: %d entries", len(n))
	}
}

func TestACLDefaultUserAndDelete(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	r := e.conn1()
	e.runWith(r, []step{
		{"ACL SETUSER newuser on nopass +@all ~*", "OK"},
		{"ACL SETUSER default off", "OK"},
	})
	// a new connection is not logged in while the default user is off
	r2 := e.conn1()
	e.runWith(r2, []step{
		{"PING", "ERR:NOAUTH Authentication required."},
		{"AUTH newuser x", "OK"},
		{"PING", "PONG"},
	})
	e.runWith(r2, []step{{"ACL SETUSER default on nopass -@all", "OK"}})
	r3 := e.conn1()
	e.runWith(r3, []step{
		{"HELLO 2 AUTH newuser x", "*"},
		{"ACL WHOAMI", "newuser"},
		{"ACL HELP", "*"},
		{"ACL DELUSER default", "ERR:ERR The 'default' user cannot be removed"},
		{"ACL SETUSER tmp on nopass", "OK"},
		{"ACL DELUSER tmp nosuch", "1"},
		{"ACL GENPASS", "*"},
		{"ACL GENPASS -236", "ERR:ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"},
		{"ACL GENPASS 5", "*"},
		{"ACL SETUSER default on nopass +@all", "OK"},
	})
	if p, _ := r3.Do(ctx, "ACL", "GENPASS").Text(); len(p) != 64 {
		t.Errorf("GENPASS %q: want 64 hex digits", p)
	}
	if p, _ := r3.Do(ctx, "ACL", "GENPASS", "5").Text(); len(p) != 2 {
		t.Errorf("GENPASS 5 %q: want 2 hex digits", p)
	}
	// a connection whose user is deleted is closed, after the reply when
	// it deleted its own user: its next command fails or goes out on a
	// new connection, logged in as the default user
	e.runWith(r3, []step{{"ACL DELUSER newuser", "1"}})
	if who, err := r3.Do(ctx, "ACL", "WHOAMI").Text(); err == nil && who != "default" {
		t.Errorf("the deleted user's connection still runs commands as %q", who)
	}
}

// The cases of Redis's tests/unit/acl-v2.tcl: selectors and read/write
// key permissions.
func TestACLSelectors(t *testing.T) {
	e := startServer(t, nil)
	r2 := e.conn1()
	e.run([]step{
		{"ACL SETUSER selector-1 on -@all resetkeys nopass", "OK"},
	})
	e.runWith(r2, []step{
		{"AUTH selector-1 password", "OK"},
		{"PING", "ERR:NOPERM this user has no permissions to run the 'ping' command"},
		{"SET write::foo bar", "ERR:NOPERM this user has no permissions to run"},
		{"GET read::foo", "ERR:NOPERM this user has no permissions to run"},
	})
	e.run([]step{{"ACL SETUSER selector-1 (+@write ~write::*) (+@read ~read::*)", "OK"}})
	e.runWith(r2, []step{
		{"PING", "ERR:NOPERM"},
		{"SET write::foo bar", "OK"},
		{"GET read::foo", "nil"},
		{"GET write::foo", "ERR:NOPERM this user has no permissions to access one of the keys"},
		{"SET read::foo bar", "ERR:NOPERM this user has no permissions to access one of the keys"},
	})
	e.run([]step{{"ACL SETUSER selector-default reset ()", "OK"}})
	_, sels := getUser(t, e.rdb, "selector-default")
	if len(sels) != 1 || sels[0]["keys"] != "" || sels[0]["channels"] != "" || sels[0]["commands"] != "-@all" {
		t.Errorf("empty selector: %v", sels)
	}
	e.run([]step{{"ACL SETUSER selector-del on (~added-selector)", "OK"}})
	_, sels = getUser(t, e.rdb, "selector-del")
	if len(sels) != 1 || sels[0]["keys"] != "~added-selector" {
		t.Errorf("selectors %v", sels)
	}
	e.run([]step{{"ACL SETUSER selector-del clearselectors", "OK"}})
	if _, sels = getUser(t, e.rdb, "selector-del"); len(sels) != 0 {
		t.Errorf("clearselectors left %v", sels)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		args []any
		want string
	}{
		{[]any{"selector-syntax", "on", "(this-is-invalid)"}, "ERR Error in ACL SETUSER modifier '(this-is-invalid)': Syntax error"},
		{[]any{"selector-syntax", "on", "(&* &fail)"}, "ERR Error in ACL SETUSER modifier '(&* &fail)': Adding a pattern after the"},
		{[]any{"invalid-selector", " () "}, "ERR Error in ACL SETUSER modifier ' () ': Syntax error"},
		{[]any{"invalid-selector", "("}, "ERR Unmatched parenthesis in acl selector starting at '('."},
		{[]any{"invalid-selector", ")"}, "ERR Error in ACL SETUSER modifier ')': Syntax error"},
	} {
		err := e.rdb.Do(ctx, append([]any{"ACL", "SETUSER"}, tt.args...)...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
	e.run([]step{{"ACL GETUSER selector-syntax", "nil"}})
	if err := e.rdb.Do(ctx, "ACL", "SETUSER", "selector-2", "(~key1 +get )", "( ~key2 +get )", "( ~key3 +get)", "(~key4 +get)").Err(); err != nil {
		t.Fatal(err)
	}
	e.run([]step{{"ACL SETUSER selector-2 (~key5 +get ) ( ~key6 +get ) ( ~key7 +get) (~key8 +get)", "OK"}})
	_, sels = getUser(t, e.rdb, "selector-2")
	for i, s := range sels {
		if want := "~key" + string(rune('1'+i)); s["keys"] != want {
			t.Errorf("selector %d keys %q, want %q", i, s["keys"], want)
		}
	}
	if len(sels) != 8 {
		t.Errorf("%d selectors, want 8", len(sels))
	}
}

func TestACLKeyReadWrite(t *testing.T) {
	e := startServer(t, nil)
	r2 := e.conn1()
	e.run([]step{
		{"ACL SETUSER key-permission-R on nopass %R~read* +@all", "OK"},
		{"ACL SETUSER key-permission-W on nopass %W~write* +@all", "OK"},
		{"ACL SETUSER key-permission-RW on nopass %R~read* %W~write* +@all", "OK"},
		{"ACL SETUSER key-permission-RW-selector on nopass (%R~read* +@all) (%W~write* +@all)", "OK"},
		{"ACL SETUSER set-RW on nopass %RW~readwrite* +@all", "OK"},
		{"SET readstr bar", "OK"},
		{"SET read bar", "OK"},
	})
	e.runWith(r2, []step{
		{"AUTH key-permission-R password", "OK"},
		{"PING", "PONG"},
		{"GET readstr", "bar"},
		{"SET readstr bar", "ERR:NOPERM this user has no permissions to access one of the keys"},
		{"SET readstr bar GET", "ERR:NOPERM"},
		{"SET readstr bar EX 100", "ERR:NOPERM"},
		{"GET notread", "ERR:NOPERM"},
		{"BITFIELD readstr GET u4 0", "[6]"},
		{"BITFIELD readstr SET u4 0 1", "ERR:NOPERM"},
		{"BITFIELD readstr INCRBY u4 0 1", "ERR:NOPERM"},

		{"AUTH key-permission-W password", "OK"},
		{"LPUSH writelist 10", "1"},
		{"GET writestr", "ERR:NOPERM"},
		{"LPUSH notwrite 10", "ERR:NOPERM"},
		{"SET writestr bar", "OK"},
		{"SET writestr bar GET", "ERR:NOPERM"},
		{"BITFIELD writestr GET u4 0", "ERR:NOPERM"},
		{"BITFIELD writestr SET u4 0 1", "ERR:NOPERM"},

		{"AUTH key-permission-RW password", "OK"},
		{"COPY read write", "1"},
		{"COPY write read", "ERR:NOPERM"},

		{"AUTH key-permission-RW-selector password", "OK"},
		{"LPUSH writelist 10", "2"},
		{"GET writestr", "ERR:NOPERM"},
		{"GET readstr", "bar"},
		{"SET readstr bar", "ERR:NOPERM"},
		{"COPY read write", "ERR:NOPERM"},
		{"COPY write read", "ERR:NOPERM"},

		{"AUTH set-RW password", "OK"},
		{"GET readwrite_str", "nil"},
		{"SET readwrite_str bar", "OK"},
		{"SET readwrite_str bar2 GET", "bar"},
		{"BITFIELD readwrite_str SET u4 0 1", "[6]"},
	})
	e.run([]step{
		{"ACL SETUSER selector-rw-info %R~foo %W~foo %RW~bar", "OK"},
		{"ACL SETUSER command-test +@all %R~read* %W~write* %RW~rw*", "OK"},
		{"ACL DRYRUN command-test GET read", "OK"},
		{"ACL DRYRUN command-test GET rw", "OK"},
		{"ACL DRYRUN command-test GET write", "This user has no permissions to access the 'write' key"},
		{"ACL DRYRUN command-test SET read x", "This user has no permissions to access the 'read' key"},
		{"ACL DRYRUN command-test SET write x", "OK"},
	})
	u, _ := getUser(t, e.rdb, "selector-rw-info")
	if u["keys"] != "~foo ~bar" {
		t.Errorf("keys %q, want \"~foo ~bar\"", u["keys"])
	}
	e.run([]step{
		{"ACL DRYRUN command-test EXISTS read write", "OK"}, // existence tests need no access
		{"ACL DRYRUN command-test EXISTS nokey", "This user has no permissions to access the 'nokey' key"},
		{"ACL DRYRUN command-test", "ERR:ERR wrong number of arguments for 'acl|dryrun' command"},
		{"ACL DRYRUN command-test GET", "ERR:ERR wrong number of arguments for 'get' command"},
		{"ACL DRYRUN nouser GET a", "ERR:ERR User 'nouser' not found"},
		{"ACL DRYRUN command-test nocmd", "ERR:ERR Command 'nocmd' not found"},
	})
}

// ACL LIST, GETUSER and the file describe the user the same way, and a
// line of ACL LIST read back gives the same user.
func TestACLListIdempotent(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"ACL SETUSER user-idempotency off -@all +get resetchannels &channel1 %R~foo1 %W~bar1 ~baz1 (-@all +set resetchannels &channel2 %R~foo2 %W~bar2 ~baz2)", "OK"},
	})
	lines, err := e.rdb.Do(context.Background(), "ACL", "LIST").StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	want := "user user-idempotency off %R~foo1 %W~bar1 ~baz1 resetchannels &channel1 -@all +get (%R~foo2 %W~bar2 ~baz2 resetchannels &channel2 -@all +set)"
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, "user user-idempotency") {
			found = true
			if l != want {
				t.Errorf("ACL LIST: %q, want %q", l, want)
			}
		}
	}
	if !found || lines[0] != "user default on nopass ~* &* +@all" {
		t.Errorf("ACL LIST %q", lines)
	}
	u, sels := getUser(t, e.rdb, "user-idempotency")
	if u["keys"] != "%R~foo1 %W~bar1 ~baz1" || u["channels"] != "&channel1" || u["commands"] != "-@all +get" {
		t.Errorf("root %v", u)
	}
	if len(sels) != 1 || sels[0]["commands"] != "-@all +set" || sels[0]["keys"] != "%R~foo2 %W~bar2 ~baz2" {
		t.Errorf("selectors %v", sels)
	}
}

func TestACLFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.acl")
	if err := os.WriteFile(path, []byte("user alice on allcommands allkeys &* >alice\nuser bob on -@all +@set +acl ~set* &* >bob\nuser default on nopass ~* &* +@all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startServer(t, func(c *Config) { c.ACLFile = path })
	r := e.conn1()
	e.runWith(r, []step{
		{"AUTH alice alice", "OK"},
		{"SET k v", "OK"},
		{"AUTH bob bob", "OK"},
		{"SADD set1 a", "1"},
		{"SET k v", "ERR:NOPERM"},
		{"ACL SETUSER carol on >carol +@all ~*", "OK"},
		{"ACL SAVE", "OK"},
		{"ACL SETUSER carol off", "OK"},
		{"ACL LOAD", "OK"},
	})
	// ACL LOAD closes the connections of the users it replaces, the one
	// that ran it after the reply
	if who, err := r.Do(context.Background(), "ACL", "WHOAMI").Text(); err == nil && who != "default" {
		t.Errorf("a connection of a reloaded user still runs commands as %q", who)
	}
	r2 := e.conn1()
	e.runWith(r2, []step{{"AUTH carol carol", "OK"}}) // carol on, as saved
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "user carol on #") {
		t.Errorf("saved file:\n%s", b)
	}
	// a file with an error is refused whole, the users stay
	os.WriteFile(path, []byte("user x on\nuser x off\n"), 0o600)
	e.runWith(r2, []step{
		{"ACL LOAD", "ERR:ERR duplicate user 'x' found on line 2"},
		{"ACL WHOAMI", "carol"},
	})
	os.WriteFile(path, []byte("user x on +nosuch\n"), 0o600)
	e.runWith(r2, []step{{"ACL LOAD", "ERR:ERR line 1: Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"}})

	// without a file, LOAD and SAVE say so; requirepass and aclfile do not mix
	e2 := startServer(t, nil)
	e2.run([]step{{"ACL LOAD", "ERR:ERR This Redis instance is not configured to use an ACL file."}, {"ACL SAVE", "ERR:ERR This Redis instance is not configured"}})
	cfg := DefaultConfig()
	cfg.ACLFile, cfg.RequirePass, cfg.Logger = path, "x", testLogger(t)
	if s, err := New(cfg); err == nil {
		s.Close()
		t.Error("requirepass with aclfile accepted")
	}
}

func TestACLRequirePassIsDefaultPassword(t *testing.T) {
	e := startServer(t, func(c *Config) { c.RequirePass = "secret" })
	r := e.conn1()
	e.runWith(r, []step{
		{"PING", "ERR:NOAUTH Authentication required."},
		{"AUTH wrong", "ERR:WRONGPASS"},
		{"AUTH secret", "OK"},
		{"AUTH default secret", "OK"},
		{"CONFIG SET requirepass other", "OK"},
		{"AUTH secret", "ERR:WRONGPASS"},
		{"AUTH other", "OK"},
		{"CONFIG SET requirepass \"\"", "OK"},
		{"AUTH x", "ERR:ERR AUTH <password> called without any password configured for the default user."},
	})
	u, _ := getUser(t, r, "default")
	if u["flags"] != "on nopass" {
		t.Errorf("default user flags %q", u["flags"])
	}
}

// TestACLScriptCalls: the commands a script calls are checked against the
// caller's user (context lua), as Redis does: EVAL itself allowed does not
// open every command to a restricted user.
func TestACLScriptCalls(t *testing.T) {
	e := startServer(t, nil)
	r := e.conn1()
	admin := e.rdb
	ctx := context.Background()
	e.runWith(admin, []step{
		{"ACL SETUSER scripter on >pw -@all +eval +get +set ~allowed:*", "OK"},
		{"ACL LOG RESET", "OK"},
	})
	if err := r.Do(ctx, "AUTH", "scripter", "pw").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		script, key, want string // want: "" for success, else an error substring
	}{
		{"return redis.call('set', KEYS[1], 'v')", "allowed:1", ""},
		{"return redis.call('get', KEYS[1])", "allowed:1", ""},
		{"return redis.call('flushall')", "allowed:1", "no permissions to run the 'flushall' command"},
		{"return redis.call('set', KEYS[1], 'v')", "other", "no permissions to access one of the keys"},
		{"return redis.pcall('del', KEYS[1])", "allowed:1", "no permissions to run the 'del' command"},
	} {
		err := r.Eval(ctx, tc.script, []string{tc.key}).Err()
		if tc.want == "" && err != nil && !errors.Is(err, redis.Nil) {
			t.Errorf("%s on %s: %v", tc.script, tc.key, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s on %s: error %v, want %q", tc.script, tc.key, err, tc.want)
		}
	}
	if n, _ := admin.Exists(ctx, "allowed:1").Result(); n != 1 {
		t.Errorf("the allowed write did not happen")
	}
	entries, err := admin.Do(ctx, "ACL", "LOG").Slice()
	if err != nil || len(entries) != 3 {
		t.Fatalf("ACL LOG: %d entries (%v), want 3", len(entries), err)
	}
	if !strings.Contains(fmt.Sprint(entries[0]), "lua") {
		t.Errorf("newest entry %v: want context lua", entries[0])
	}
}

// TestACLScriptingCategory: +@scripting opens FUNCTION's subcommands
// (LOAD, FCALL...) as in Redis; -function|load closes one of them.
func TestACLScriptingCategory(t *testing.T) {
	e := startServer(t, nil)
	r := e.conn1()
	ctx := context.Background()
	e.runWith(e.rdb, []step{{"ACL SETUSER fn on >pw +@scripting +set ~x*", "OK"}})
	e.runWith(r, []step{{"AUTH fn pw", "OK"}})
	lib := "#!lua name=lib\nredis.register_function('f', function(k) return redis.call('set', k[1], 'v') end)"
	if v, err := r.Do(ctx, "FUNCTION", "LOAD", lib).Result(); err != nil || v != "lib" {
		t.Fatalf("FUNCTION LOAD with +@scripting: %v %v", v, err)
	}
	e.runWith(r, []step{
		{"FCALL f 1 xa", "OK"},
		{"FUNCTION LIST", "*"},
		{"FCALL f 1 ya", "ERR:NOPERM"},
	})
	// redis.acl_check_cmd checks the script's user, without an ACL LOG
	// entry; unknown commands are an error
	e.runWith(e.rdb, []step{{"ACL LOG RESET", "OK"}})
	e.runWith(r, []step{
		{"EVAL return(redis.acl_check_cmd('set','xx','1')) 1 xx", "1"},
		{"EVAL return(redis.acl_check_cmd('hset','xx','f','1')) 1 xx", "nil"},
		{"EVAL return(redis.acl_check_cmd('set','yy','1')) 0", "nil"},
		{"EVAL return(redis.acl_check_cmd('nosuchcmd','yy')) 0", "ERR:ERR Invalid command passed to redis.acl_check_cmd() script: 3af54fb136965c67de06a86cb6d015e8121c6313, on @user_script:1."},
	})
	e.runWith(e.rdb, []step{{"ACL LOG", "[]"}, {"EVAL return(redis.acl_check_cmd('hset','xx','f','1')) 0", "1"}})
	e.runWith(e.rdb, []step{{"ACL SETUSER fn -function|load", "OK"}})
	err := r.Do(ctx, "FUNCTION", "LOAD", "REPLACE", lib).Err()
	if err == nil || err.Error() != "NOPERM this user has no permissions to run the 'function|load' command" {
		t.Fatalf("FUNCTION LOAD after -function|load: %v", err)
	}
}

// TestACLChannels: PUBLISH, SUBSCRIBE and PSUBSCRIBE are checked against
// the user's channel patterns (PSUBSCRIBE patterns literally), as Redis 7
// does; a new user has no channels (acl-pubsub-default resetchannels).
func TestACLChannels(t *testing.T) {
	e := startServer(t, nil)
	r := e.conn1()
	ctx := context.Background()
	e.runWith(e.rdb, []step{
		{"ACL SETUSER news on >pw +@all ~* &news.*", "OK"},
		{"ACL SETUSER none on >pw +@all ~*", "OK"},
	})
	if err := r.Do(ctx, "AUTH", "news", "pw").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []any
		ok   bool
	}{
		{[]any{"PUBLISH", "news.sport", "x"}, true},
		{[]any{"PUBLISH", "weather", "x"}, false},
		{[]any{"SPUBLISH", "weather", "x"}, false},
		{[]any{"EVAL", "return redis.call('publish', 'weather', 'x')", "0"}, false},
		{[]any{"EVAL", "return redis.call('publish', 'news.x', 'x')", "0"}, true},
	} {
		err := r.Do(ctx, tc.args...).Err()
		if tc.ok != (err == nil) {
			t.Errorf("%v: %v, want allowed %v", tc.args, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		user string
		sub  func(*redis.Client) *redis.PubSub
		ok   bool
	}{
		{"news", func(c *redis.Client) *redis.PubSub { return c.Subscribe(ctx, "news.a") }, true},
		{"news", func(c *redis.Client) *redis.PubSub { return c.Subscribe(ctx, "weather") }, false},
		{"news", func(c *redis.Client) *redis.PubSub { return c.PSubscribe(ctx, "news.*") }, true},
		{"news", func(c *redis.Client) *redis.PubSub { return c.PSubscribe(ctx, "*") }, false},
		{"none", func(c *redis.Client) *redis.PubSub { return c.Subscribe(ctx, "news.a") }, false},
	} {
		c := redis.NewClient(&redis.Options{Addr: e.addr, Username: tc.user, Password: "pw", Protocol: 2, DisableIdentity: true})
		ps := tc.sub(c)
		_, err := ps.Receive(ctx)
		if tc.ok != (err == nil) {
			t.Errorf("%s: subscribe: %v, want allowed %v", tc.user, err, tc.ok)
		}
		ps.Close()
		c.Close()
	}
}
