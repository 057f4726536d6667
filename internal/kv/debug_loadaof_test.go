package kv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestDebugLoadAOF: DEBUG LOADAOF drops the keyspace and loads the data
// directory's snapshot and log again, as Redis: the data comes back
// whole (every database, expiries, stream groups and consumers), what the
// log does not hold (written with appendonly off) is gone, and a file
// that does not end after a whole record is refused with the keyspace
// left as it was.
func TestDebugLoadAOF(t *testing.T) {
	tests := []struct {
		name string
		// after runs once the data is written; it returns what the
		// reload must give back: "same" for the digest before it
		after   func(t *testing.T, e *testEnv, dir string) string
		wantErr string
	}{
		{name: "log", after: func(*testing.T, *testEnv, string) string { return "same" }},
		{name: "snapshot and log", after: func(t *testing.T, e *testEnv, _ string) string {
			e.run([]step{{"SAVE", "OK"}, {"SET after save", "OK"}, {"XADD st 9-1 f v", "9-1"}})
			return "same"
		}},
		{name: "appendonly off", after: func(t *testing.T, e *testEnv, _ string) string {
			want := e.rdb.Do(context.Background(), "DEBUG", "DIGEST").Val().(string)
			e.run([]step{{"CONFIG SET appendonly no", "OK"}, {"SET late v", "OK"}, {"DEL counter", "1"}})
			return want
		}},
		{name: "torn log", wantErr: "ERR Error loading the append only file", after: func(t *testing.T, e *testEnv, dir string) string {
			logs, _ := filepath.Glob(filepath.Join(dir, "log.*.aof"))
			if len(logs) != 1 {
				t.Fatalf("logs %v, want one", logs)
			}
			f, err := os.OpenFile(logs[0], os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nhel"); err != nil {
				t.Fatal(err)
			}
			return "same"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := startServer(t, func(c *Config) {
				c.DataDir = dir
				c.EnableDebugCommand = "yes"
			})
			ctx := context.Background()
			fillAllTypes(t, e.rdb, "k")
			e.run([]step{
				{"XADD st 1-1 f v", "1-1"}, {"XADD st 2-1 f v", "2-1"},
				{"XGROUP CREATE st g 0", "OK"},
				{"XREADGROUP GROUP g alice COUNT 1 STREAMS st >", "*"},
				{"XREADGROUP GROUP g bob NOACK STREAMS st >", "*"},
				{"XGROUP CREATECONSUMER st g carol", "1"},
			})
			other := redis.NewClient(&redis.Options{Addr: e.addr, DB: 3, DisableIdentity: true, MaxRetries: -1})
			t.Cleanup(func() { other.Close() })
			if err := other.RPush(ctx, "db3list", "a", "b").Err(); err != nil {
				t.Fatal(err)
			}
			want, wantKeys := tc.after(t, e, dir), ""
			if want == "same" {
				want = e.rdb.Do(ctx, "DEBUG", "DIGEST").Val().(string)
				wantKeys = dumpKeyspace(t, e.rdb)
			}
			err := e.rdb.Do(ctx, "DEBUG", "LOADAOF").Err()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("DEBUG LOADAOF: %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("DEBUG LOADAOF: %v", err)
			}
			if got := e.rdb.Do(ctx, "DEBUG", "DIGEST").Val().(string); got != want {
				t.Errorf("digest after the reload %s, want %s", got, want)
			}
			if wantKeys != "" {
				if got := dumpKeyspace(t, e.rdb); got != wantKeys {
					t.Errorf("keys after the reload:\n%s\nwant:\n%s", got, wantKeys)
				}
				if got := consumerNamesOf(t, e, "st", "g"); got != "[alice bob carol]" {
					t.Errorf("consumers after the reload: %s, want [alice bob carol]", got)
				}
			}
			if n := other.LLen(ctx, "db3list").Val(); n != 2 {
				t.Errorf("database 3's list has %d elements after the reload, want 2", n)
			}
			if ttl := e.rdb.TTL(ctx, "k2:ttl").Val(); ttl <= 0 {
				t.Errorf("k2:ttl's TTL %v after the reload, want its hour", ttl)
			}
			if tc.name == "appendonly off" {
				e.run([]step{{"EXISTS late", "0"}, {"EXISTS counter", "1"}})
			}
		})
	}
}

// TestDebugLoadAOFRefused: DEBUG LOADAOF wants DEBUG enabled, no
// argument and a data directory.
func TestDebugLoadAOFRefused(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	e.run([]step{
		{"SET k v", "OK"},
		{"DEBUG LOADAOF", "ERR:ERR no append only file"},
		{"DEBUG LOADAOF extra", "ERR:ERR no append only file"}, // Redis takes any arguments
		{"GET k", "v"},
	})
	off := startServer(t, func(c *Config) { c.DataDir = t.TempDir() })
	off.run([]step{{"DEBUG LOADAOF", "ERR:ERR DEBUG command not allowed"}})
}
