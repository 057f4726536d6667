package rdbcodec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisAssetFiles decodes the values of the RDB files of Redis's own
// test suite (written by Redis 2.4 to 7.0: zipmaps, ziplists, intsets,
// quicklists), when the suite is at ../shared/redis-tests
// (REDIS_TESTS_DIR), and compares them with what a redis-server that
// loads the same file answers (skipped without one); the suite's corrupt
// files are refused.
func TestRedisAssetFiles(t *testing.T) {
	dir := os.Getenv("REDIS_TESTS_DIR")
	if dir == "" {
		dir = "../../../../shared/redis-tests"
	}
	dir = filepath.Join(dir, "tests", "assets")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("Redis's test suite not found: ", err)
	}
	// files Redis's suite loads to check that it refuses them
	for _, name := range []string{"corrupt_empty_keys.rdb", "corrupt_ziplist.rdb"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := walkRDB(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want %v", name, err, ErrFormat)
		}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	for _, name := range []string{"encodings.rdb", "hash-zipmap.rdb", "hash-ziplist.rdb", "list-quicklist.rdb", "zset-ziplist.rdb"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			values, err := walkRDB(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(values) == 0 {
				t.Fatal("no keys")
			}
			c := loadRedis(t, bin, dir, name)
			for key, o := range values {
				if got, want := describe(o), redisDescribe(t, c, key); got != want {
					t.Errorf("%s:\n decoded %.300s\n redis   %.300s", key, got, want)
				}
			}
		})
	}
}

// walkRDB reads the keys and values of an RDB file (test-only: opcodes
// of auxiliary fields, databases and expiries are skipped).
func walkRDB(b []byte) (map[string]*Object, error) {
	if len(b) < 9 || string(b[:5]) != "REDIS" {
		return nil, fmt.Errorf("not an RDB file")
	}
	r := &reader{b: b[9:], budget: MaxExpanded}
	out := map[string]*Object{}
	for {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0xFF: // EOF
			return out, nil
		case 0xFA: // aux: two strings
			if _, err = r.str(); err == nil {
				_, err = r.str()
			}
		case 0xFE: // select db
			_, err = r.plainLen()
		case 0xFB: // resize db
			if _, err = r.plainLen(); err == nil {
				_, err = r.plainLen()
			}
		case 0xFD:
			_, err = r.take(4)
		case 0xFC:
			_, err = r.take(8)
		default:
			key, err := r.str()
			if err != nil {
				return nil, err
			}
			o, err := r.object(op)
			if err != nil {
				return nil, fmt.Errorf("key %q (type %d): %w", key, op, err)
			}
			out[string(key)] = o
		}
		if err != nil {
			return nil, err
		}
	}
}

// describe formats a value as redisDescribe reads it.
func describe(o *Object) string {
	switch o.Kind {
	case KindString:
		return "string " + string(o.Str)
	case KindList:
		return "list " + strings.Join(strs(o.Elems), ",")
	case KindSet:
		el := strs(o.Elems)
		sort.Strings(el)
		return "set " + strings.Join(el, ",")
	case KindHash:
		var el []string
		for i := 0; i < len(o.Elems); i += 2 {
			el = append(el, string(o.Elems[i])+"="+string(o.Elems[i+1]))
		}
		sort.Strings(el)
		return "hash " + strings.Join(el, ",")
	case KindZSet:
		type m struct {
			s string
			f float64
		}
		var ms []m
		for i, e := range o.Elems {
			ms = append(ms, m{string(e), o.Scores[i]})
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].f < ms[j].f || (ms[i].f == ms[j].f && ms[i].s < ms[j].s) })
		var el []string
		for _, x := range ms {
			el = append(el, x.s+"="+strconv.FormatFloat(x.f, 'g', 17, 64))
		}
		return "zset " + strings.Join(el, ",")
	}
	return o.Kind.String()
}

func redisDescribe(t *testing.T, c *redis.Client, key string) string {
	ctx := context.Background()
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	switch typ {
	case "string":
		return "string " + c.Get(ctx, key).Val()
	case "list":
		return "list " + strings.Join(c.LRange(ctx, key, 0, -1).Val(), ",")
	case "set":
		el := c.SMembers(ctx, key).Val()
		sort.Strings(el)
		return "set " + strings.Join(el, ",")
	case "hash":
		var el []string
		for f, v := range c.HGetAll(ctx, key).Val() {
			el = append(el, f+"="+v)
		}
		sort.Strings(el)
		return "hash " + strings.Join(el, ",")
	case "zset":
		var el []string
		for _, z := range c.ZRangeWithScores(ctx, key, 0, -1).Val() {
			el = append(el, z.Member.(string)+"="+strconv.FormatFloat(z.Score, 'g', 17, 64))
		}
		return "zset " + strings.Join(el, ",")
	}
	return typ
}

// loadRedis starts a redis-server on a copy of an RDB file.
func loadRedis(t *testing.T, bin, dir, name string) *redis.Client {
	tmp := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tmp, "--dbfilename", name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i == 300 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}
