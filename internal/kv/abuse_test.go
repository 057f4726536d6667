package kv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The abuse cases of issue 13 (3): what one client can make the server
// hold. Each test measures the server's memory (the Go heap of this
// process, with the server in it, or the RSS of a gantry peer process)
// against a stated bound; on the code before the limits each went to
// hundreds of megabytes or gigabytes.

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// abuseUnauthBulk opens n connections that each announce a 536,870,000
// byte argument without authenticating and send up to size bytes of it;
// it returns when every one is closed or has sent everything.
func abuseUnauthBulk(addr string, n, size int) []net.Conn {
	chunk := make([]byte, 1<<20)
	var wg sync.WaitGroup
	var conns []net.Conn
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		conns = append(conns, nc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := nc.Write([]byte("*1\r\n$536870000\r\n")); err != nil {
				return
			}
			for sent := 0; sent < size; sent += len(chunk) {
				nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := nc.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return conns
}

// abuseNonReading opens n connections that each pipeline gets GETs of key
// and never read; it returns once the server stopped running commands.
func abuseNonReading(addr string, rdb *redis.Client, n, gets int, key string) []net.Conn {
	var conns []net.Conn
	req := []byte(strings.Repeat("GET "+key+"\r\n", gets))
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		conns = append(conns, nc)
		go func() {
			nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			nc.Write(req)
		}()
	}
	processed := func() int {
		info, _ := rdb.Info(context.Background(), "stats").Result()
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "total_commands_processed:"); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return 0
	}
	for last, stable := -10, 0; stable < 5; {
		time.Sleep(100 * time.Millisecond)
		p := processed()
		if p-last <= 1 { // the INFO itself
			stable++
		} else {
			stable = 0
		}
		last = p
	}
	return conns
}

// manyArgs is one command of n one-byte arguments.
func manyArgs(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n$4\r\nNOPE\r\n", n+1)
	for i := 0; i < n; i++ {
		b.WriteString("$1\r\nx\r\n")
	}
	return b.Bytes()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// TestAbuseUnauthenticatedBulkHeap: four unauthenticated clients announce
// a 512 MB argument and send 64 MB of it each. The server closes them at
// the header, so its heap does not grow by what they send (it held every
// byte before: 1.07 GB of RSS for one client sending it all).
func TestAbuseUnauthenticatedBulkHeap(t *testing.T) {
	env := startServer(t, func(c *Config) { c.RequirePass = "pw" })
	before := heapInUse()
	conns := abuseUnauthBulk(env.addr, 4, 64<<20)
	defer closeAll(conns)
	grown := heapInUse() - before
	t.Logf("heap grew by %d KB", grown>>10)
	if bound := int64(16 << 20); grown > bound {
		t.Fatalf("heap grew by %d bytes, bound %d", grown, bound)
	}
}

// TestAbuseNonReadingClientsHeap: four clients pipeline 1,000 GETs each of
// a 100 KB value and never read. The server stops running a client's
// commands while 64 KB of its replies wait for the socket, so it holds
// about 100 KB per client instead of the 100 MB of replies (2.3 GB of RSS
// before).
func TestAbuseNonReadingClientsHeap(t *testing.T) {
	env := startServer(t, nil)
	if err := env.rdb.Set(context.Background(), "big", strings.Repeat("x", 100<<10), 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := heapInUse()
	conns := abuseNonReading(env.addr, env.rdb, 4, 1000, "big")
	defer closeAll(conns)
	grown := heapInUse() - before
	t.Logf("heap grew by %d KB", grown>>10)
	if bound := int64(16 << 20); grown > bound {
		t.Fatalf("heap grew by %d bytes, bound %d", grown, bound)
	}
}

// TestAbuseManyArguments: a command of two million arguments arriving in
// 64 KB reads is scanned once (resp.Partial), not once per read: the
// server allocates about twice its arguments and its bytes (the
// re-parsing allocated gigabytes and stalled the loop for 426 ms), and
// gives the big buffers back after the command.
func TestAbuseManyArguments(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = testLogger(t)
	cfg.ActiveExpireHz = 0
	cfg.EventLoops = -1
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 2_000_000
	cmd := manyArgs(n)
	c := newClient(s, nullConn{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for off := 0; off < len(cmd); {
		if !c.prepareRead() {
			t.Fatal("prepareRead refused the command")
		}
		k := copy(c.rbuf[c.rend:min(c.rend+64<<10, len(c.rbuf))], cmd[off:])
		c.rend += k
		off += k
		if res := c.process(); res != procMore {
			t.Fatalf("process: %v %q", res, c.W.B)
		}
	}
	runtime.ReadMemStats(&after)
	if !bytes.HasPrefix(c.W.B, []byte("-ERR unknown command 'NOPE'")) {
		t.Fatalf("reply %.60q", c.W.B)
	}
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	// the arguments' slice headers (append's doubling) and the buffer
	bound := int64(2*n*24 + 3*len(cmd))
	t.Logf("allocated %d MB for a %d MB command of %d arguments", allocated>>20, len(cmd)>>20, n)
	if allocated > bound {
		t.Errorf("allocated %d bytes, bound %d", allocated, bound)
	}
	if cap(c.Args) > keptArgs {
		t.Errorf("the client kept %d argument slots", cap(c.Args))
	}
	c.W.B = c.W.B[:0]
	c.prepareRead()
	if len(c.rbuf) > keptBufSize {
		t.Errorf("the client kept a read buffer of %d bytes", len(c.rbuf))
	}
}

// rssKB returns a field of /proc/pid/status in KB (VmRSS, VmHWM).
func rssKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestAbuseRSS runs the three abuse cases against a gantry peer process
// each and checks its peak RSS (VmHWM) against a bound; it logs the peak
// and the RSS a few seconds after the clients closed, the figures of the
// issue (go test -run TestAbuseRSS -v ./internal/kv).
func TestAbuseRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gantry peer")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	bin, err := buildGantry()
	if err != nil {
		t.Fatal(err)
	}
	const bound = 200 << 10 // KB
	for _, tt := range []struct {
		name  string
		args  []string
		pass  string
		abuse func(t *testing.T, addr string, rdb *redis.Client) []net.Conn
	}{
		{"unauthenticated-512MB-bulk", []string{"--requirepass", "pw"}, "pw", func(t *testing.T, addr string, _ *redis.Client) []net.Conn {
			return abuseUnauthBulk(addr, 4, 512<<20)
		}},
		{"4-non-reading-clients", nil, "", func(t *testing.T, addr string, rdb *redis.Client) []net.Conn {
			if err := rdb.Set(context.Background(), "big", strings.Repeat("x", 100<<10), 0).Err(); err != nil {
				t.Fatal(err)
			}
			return abuseNonReading(addr, rdb, 4, 5000, "big")
		}},
		{"2M-arguments", nil, "", func(t *testing.T, addr string, _ *redis.Client) []net.Conn {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			go nc.Write(manyArgs(2_000_000))
			nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			line, err := readLine(t, nc)
			if !strings.HasPrefix(line, "-ERR unknown command") {
				t.Errorf("reply %q %v", line, err)
			}
			return []net.Conn{nc}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			cmd := exec.Command(bin, append([]string{"peer", "--port", port}, tt.args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			addr := "127.0.0.1:" + port
			rdb := redis.NewClient(&redis.Options{Addr: addr, Password: tt.pass, DisableIdentity: true, MaxRetries: -1})
			defer rdb.Close()
			waitUntil(t, "the peer serves", func() bool { return rdb.Ping(context.Background()).Err() == nil })
			pid := cmd.Process.Pid
			start := rssKB(t, pid, "VmRSS")
			conns := tt.abuse(t, addr, rdb)
			peak := rssKB(t, pid, "VmHWM")
			closeAll(conns)
			time.Sleep(5 * time.Second)
			if err := rdb.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("the peer stopped serving: %v\n%s", err, out.String())
			}
			t.Logf("RSS: %d MB at start, peak %d MB, %d MB 5 s after the clients closed",
				start>>10, peak>>10, rssKB(t, pid, "VmRSS")>>10)
			if peak > bound {
				t.Errorf("peak RSS %d KB, bound %d KB", peak, bound)
			}
		})
	}
}
