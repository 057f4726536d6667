//go:build linux

package kv

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

// fileLimitEnv makes the test binary a helper that lowers its descriptor
// limit (RLIMIT_NOFILE, soft and hard) to the value and then executes its
// arguments (the gantry binary), which inherits the limit.
const fileLimitEnv = "GANTRY_KV_TEST_NOFILE"

func execWithFileLimit() {
	v := os.Getenv(fileLimitEnv)
	if v == "" {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		os.Exit(3)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		os.Stderr.WriteString("setrlimit: " + err.Error() + "\n")
		os.Exit(3)
	}
	args := os.Args[len(os.Args)-1]
	argv := strings.Split(args, "\x1f")
	err = syscall.Exec(argv[0], argv, os.Environ())
	os.Stderr.WriteString("exec: " + err.Error() + "\n")
	os.Exit(3)
}

// TestFileLimit is issue 13's reproduction: a gantry peer whose descriptor
// limit is 256 gets 300 connections at once. It used to exit with
// "accept4: too many open files"; now maxclients (256 - 32) refuses the
// connections it cannot serve with Redis's error, and the peer serves
// normally once they are closed.
func TestFileLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gantry peer")
	}
	bin, err := buildGantry()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	argv := strings.Join([]string{bin, "peer", "--port", port}, "\x1f")
	cmd := exec.Command(os.Args[0], "-test.run=^$", argv)
	cmd.Env = append(os.Environ(), fileLimitEnv+"=256")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	addr := "127.0.0.1:" + port
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
	defer rdb.Close()
	waitUntil(t, "the peer serves", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	if v, _ := rdb.ConfigGet(context.Background(), "maxclients").Result(); v["maxclients"] != "224" {
		t.Errorf("maxclients %v, want 224 (256 - 32)", v)
	}

	var conns []net.Conn
	defer func() { closeAll(conns) }()
	for i := 0; i < 300; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v\n%s", i, err, out.String())
		}
		conns = append(conns, nc)
		nc.Write([]byte("PING\r\n"))
	}
	served, refused := 0, 0
	for i, nc := range conns {
		line, err := readLine(t, nc)
		switch line {
		case "+PONG":
			served++
		case "-ERR max number of clients reached":
			refused++
		default:
			t.Fatalf("connection %d: %q %v\n%s", i, line, err, out.String())
		}
	}
	t.Logf("%d served, %d refused", served, refused)
	if refused == 0 {
		t.Error("no connection was refused")
	}
	closeAll(conns)
	conns = nil
	select {
	case err := <-exited:
		t.Fatalf("the peer exited: %v\n%s", err, out.String())
	default:
	}
	ctx := context.Background()
	waitUntil(t, "the peer serves again", func() bool {
		return rdb.Set(ctx, "k", "v", 0).Err() == nil && rdb.Get(ctx, "k").Val() == "v"
	})
	for i := 0; i < 100; i++ { // every slot is free again
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		nc.Write([]byte("PING\r\n"))
		if line, err := readLine(t, nc); line != "+PONG" {
			t.Fatalf("after the burst, connection %d: %q %v", i, line, err)
		}
	}
}
