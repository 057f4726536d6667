package kv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// redisCLI returns the path of redis-cli or skips the test.
func redisCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (apt-get install -y redis-tools); skipping the redis-cli compatibility test")
	}
	return p
}

func TestRedisCLI(t *testing.T) {
	cli := redisCLI(t)
	e := startServer(t, nil)
	host, port, _ := strings.Cut(e.addr, ":")
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// commands as arguments
	if out := run("", "SET", "greeting", "hello world"); out != "OK\n" {
		t.Fatalf("SET: %q", out)
	}
	if out := run("", "GET", "greeting"); out != "hello world\n" {
		t.Fatalf("GET: %q", out)
	}
	// commands read line by line from standard input, as typed in a session
	session := "RPUSH l a b c\nLRANGE l 0 -1\nHSET h f v\nHGETALL h\nGET nokey\nINCR greeting\nSET q \"with space\"\nGET q\nQUIT\n"
	want := "3\na\nb\nc\n1\nf\nv\n\nERR value is not an integer or out of range\n\nOK\nwith space\n"
	if out := run(session); !strings.HasPrefix(out, want) {
		t.Fatalf("session output:\n%q\nwant prefix\n%q", out, want)
	}
	// RESP3 session
	if out := run("HGETALL h\nZADD z 1.5 m\nZSCORE z m\n", "-3"); out != "f v\n1\n1.5\n" {
		t.Fatalf("RESP3 session: %q", out)
	}
	// --scan walks the SCAN cursor
	if out := run("", "--scan", "--pattern", "*"); len(strings.Fields(out)) != 5 {
		t.Fatalf("--scan: %q", out)
	}
}

// TestRedisCLIPipe loads keys with redis-cli --pipe, the mass insertion
// mode (the benchmark script does 1,000,000; CI does 100,000).
func TestRedisCLIPipe(t *testing.T) {
	cli := redisCLI(t)
	e := startServer(t, nil)
	host, port, _ := strings.Cut(e.addr, ":")
	n := 100000
	if testing.Short() {
		n = 10000
	}
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key:%d", i)
		fmt.Fprintf(&in, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n", len(k), k, len(fmt.Sprint(i)), i)
	}
	cmd := exec.Command(cli, "-h", host, "-p", port, "--pipe")
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --pipe: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("errors: 0, replies: %d", n)) {
		t.Fatalf("redis-cli --pipe output: %s", out)
	}
	if got := e.rdb.DBSize(context.Background()).Val(); got != int64(n) {
		t.Fatalf("DBSIZE = %d, want %d", got, n)
	}
	if v := e.rdb.Get(context.Background(), fmt.Sprintf("key:%d", n-1)).Val(); v != fmt.Sprint(n-1) {
		t.Fatalf("last key = %q", v)
	}
}
