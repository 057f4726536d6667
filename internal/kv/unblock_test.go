package kv

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestClientUnblock: CLIENT UNBLOCK ends a blocking command's wait as a
// timeout or with an UNBLOCKED error, and answers 0 for a client that is
// not blocked.
func TestClientUnblock(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			blocked, admin := e.resp(), e.resp()
			id := strings.TrimSuffix(strings.TrimPrefix(blocked.do("CLIENT", "ID"), ":"), "\r\n")
			for _, tc := range []struct {
				cmd   []string
				how   []string
				reply string
			}{
				{[]string{"BLPOP", "l", "0"}, nil, "*-1\r\n"},
				{[]string{"BLPOP", "l", "0"}, []string{"TIMEOUT"}, "*-1\r\n"},
				{[]string{"BZPOPMIN", "z", "0"}, []string{"ERROR"}, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
				{[]string{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}, []string{"error"}, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
			} {
				blocked.send(tc.cmd...)
				waitUntil(t, "blocked", func() bool { return e.srv.blocked.Load() == 1 })
				if got := admin.do(append([]string{"CLIENT", "UNBLOCK", id}, tc.how...)...); got != ":1\r\n" {
					t.Fatalf("%v: CLIENT UNBLOCK answered %q", tc.cmd, got)
				}
				if got := blocked.next(); got != tc.reply {
					t.Errorf("%v %v: got %q, want %q", tc.cmd, tc.how, got, tc.reply)
				}
				waitUntil(t, "unblocked", func() bool { return e.srv.blocked.Load() == 0 })
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"CLIENT", "UNBLOCK", id}, ":0\r\n"}, // not blocked
				{[]string{"CLIENT", "UNBLOCK", "123456"}, ":0\r\n"},
				{[]string{"CLIENT", "UNBLOCK", id, "MAYBE"}, "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
				{[]string{"CLIENT", "UNBLOCK", "x"}, "-ERR value is not an integer or out of range\r\n"},
			} {
				if got := admin.do(tc.args...); got != tc.want {
					t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
				}
			}
			if got := blocked.do("PING"); got != "+PONG\r\n" {
				t.Errorf("after the unblocks: %q", got)
			}
		})
	}
}

// TestConfigRewrite: without a configuration file CONFIG REWRITE says so;
// with one, the server's hook gets every parameter by name.
func TestConfigRewrite(t *testing.T) {
	e := startServer(t, nil)
	if got := e.resp().do("CONFIG", "REWRITE"); got != "-ERR The server is running without a config file\r\n" {
		t.Errorf("without a file: %q", got)
	}
	var (
		mu   sync.Mutex
		got  map[string]string
		fail bool
	)
	e2 := startServer(t, func(c *Config) {
		c.ConfigRewrite = func(get func(string) (string, bool)) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return fmt.Errorf("disk on fire")
			}
			got = map[string]string{}
			for _, n := range []string{"maxmemory", "appendfsync", "nosuch"} {
				if v, ok := get(n); ok {
					got[n] = v
				}
			}
			return nil
		}
	})
	r := e2.resp()
	r.do("CONFIG", "SET", "maxmemory", "1048576")
	if s := r.do("CONFIG", "REWRITE"); s != "+OK\r\n" {
		t.Fatalf("CONFIG REWRITE: %q", s)
	}
	mu.Lock()
	if got["maxmemory"] != "1048576" || got["appendfsync"] != "everysec" || len(got) != 2 {
		t.Errorf("the hook saw %v", got)
	}
	fail = true
	mu.Unlock()
	if s := r.do("CONFIG", "REWRITE"); s != "-ERR Rewriting config file: disk on fire\r\n" {
		t.Errorf("failing rewrite: %q", s)
	}
}
