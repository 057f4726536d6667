package kv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Differential tests: the same command sequences against gantry and a real
// redis-server (skipped when none is installed), comparing every reply.
// The sequences avoid what differs by design: IDs and idle times from the
// clock, random picks, and OBJECT/INFO internals.

// startRedis runs a throwaway redis-server on a free port and returns a
// RESP2 client for it; extra are more server options.
func startRedis(t *testing.T, extra ...string) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed: differential test skipped")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir()}, extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Protocol: 2,
		DisableIdentity: true, MaxRetries: -1, PoolSize: 2, ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	for i := 0; ; i++ {
		if c.Ping(context.Background()).Err() == nil {
			break
		}
		if i == 200 {
			t.Fatalf("redis-server did not start: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// diffCmd is one command of a differential sequence, its arguments given
// separately so they may hold spaces or binary data.
type diffCmd []any

// diff runs cmds on both servers and reports every reply that differs.
func diff(t *testing.T, e *testEnv, r *redis.Client, cmds []diffCmd) {
	t.Helper()
	ctx := context.Background()
	bad := 0
	for i, cmd := range cmds {
		want := format(r.Do(ctx, cmd...).Result())
		got := format(e.rdb.Do(ctx, cmd...).Result())
		if got != want && !sameNumbers(got, want) {
			bad++
			t.Errorf("command %d %s:\n gantry %.300s\n redis  %.300s%s", i, cmdString(cmd), got, want, firstDifference(got, want))
			if bad == 10 {
				t.Fatal("too many differences")
			}
		}
	}
}

// sameNumbers reports whether two replies differ only in how they print
// equal doubles: redis-server 7.0 prints scores with %.17g
// (16.468384628849499), gantry as Redis 7.2 (16.4683846288495).
func sameNumbers(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i] == fb[i] {
			continue
		}
		x, err1 := strconv.ParseFloat(strings.Trim(fa[i], "[]"), 64)
		y, err2 := strconv.ParseFloat(strings.Trim(fb[i], "[]"), 64)
		if err1 != nil || err2 != nil || x != y {
			return false
		}
	}
	return true
}

// firstDifference describes the first differing word of two long replies.
func firstDifference(a, b string) string {
	fa, fb := strings.Fields(a), strings.Fields(b)
	for i := 0; i < len(fa) && i < len(fb); i++ {
		if fa[i] != fb[i] {
			if x, err := strconv.ParseFloat(strings.Trim(fa[i], "[]"), 64); err == nil {
				if y, err := strconv.ParseFloat(strings.Trim(fb[i], "[]"), 64); err == nil && x == y {
					continue
				}
			}
			return fmt.Sprintf("\n first difference at word %d: %q / %q", i, fa[i], fb[i])
		}
	}
	return ""
}

func cmdString(cmd diffCmd) string {
	var b strings.Builder
	for i, a := range cmd {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.60q", fmt.Sprint(a))
	}
	return b.String()
}

// lines turns "CMD arg arg" lines into commands (fields split on blanks).
func lines(s string) []diffCmd {
	var out []diffCmd
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, diffCmd(splitArgs(l)))
	}
	return out
}

// newDiffEnv starts both servers, flushed.
func newDiffEnv(t *testing.T) (*testEnv, *redis.Client) {
	t.Helper()
	r := startRedis(t)
	e := startServer(t, nil)
	return e, r
}

// diffRaw runs cmds on both servers over plain connections and reports
// every reply whose bytes differ (a bulk string where the other sends an
// error, a double printed otherwise: what go-redis's values hide).
func diffRaw(t *testing.T, e *testEnv, r *redis.Client, cmds [][]string) {
	t.Helper()
	dial := func(addr string) *respConn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return &respConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	}
	gc, rc := dial(e.addr), dial(r.Options().Addr)
	bad := 0
	for i, cmd := range cmds {
		want, got := rc.do(cmd...), gc.do(cmd...)
		if got != want {
			bad++
			t.Errorf("command %d %q:\n gantry %.400q\n redis  %.400q", i, cmd, got, want)
			if bad == 20 {
				t.Fatal("too many differences")
			}
		}
	}
}
