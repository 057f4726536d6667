package kv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/testutil"
)

// buildGantry builds the gantry binary once per test binary run.
var buildGantry = sync.OnceValues(func() (string, error) {
	dir, err := tempDirForBuild()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gantry")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gantry-project/gantry/cmd/gantry").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// peerProc is a gantry peer subprocess.
type peerProc struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	addr string
}

// startPeer starts a peer on a free port and waits until it answers. The
// port is free when picked but another process may take it before the
// peer binds it: the peer then exits and whatever holds the port answers
// instead, so the answer must come from the peer's own process, and a
// lost port is picked again.
func startPeer(t *testing.T, bin, dir, fsync string) *peerProc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		out := &testutil.SyncBuffer{}
		cmd := exec.Command(bin, "peer", "--port", port, "--data-dir", dir, "--appendfsync", fsync)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &peerProc{cmd: cmd, out: out, addr: "127.0.0.1:" + port}
		if p.answers(attempt < 5) {
			return p
		}
		cmd.Process.Kill()
		cmd.Wait()
		if attempt >= 5 || !strings.Contains(out.String(), "address already in use") {
			t.Fatalf("peer did not start: %s", out.String())
		}
	}
}

// answers waits until the peer's own process answers on its address; it
// gives up early when the peer lost its port and retry allows picking
// another.
func (p *peerProc) answers(retry bool) bool {
	c := redis.NewClient(&redis.Options{Addr: p.addr, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	self := "process_id:" + strconv.Itoa(p.cmd.Process.Pid) + "\r\n"
	for i := 0; i < 400; i++ {
		if info, err := c.Info(context.Background(), "server").Result(); err == nil && strings.Contains(info, self) {
			return true
		}
		if retry && strings.Contains(p.out.String(), "address already in use") {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// TestKill9 kills a peer with SIGKILL in the middle of a write loop and
// checks after a restart that every acknowledged write is there. With
// appendfsync always the writes are on disk before the reply; with
// everysec and no they are in the OS's page cache before the reply, which
// survives the death of the process (only a machine crash loses the last
// second, or the OS's flush interval).
func TestKill9(t *testing.T) {
	bin, err := buildGantry()
	if err != nil {
		t.Fatal(err)
	}
	for _, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir()
			p := startPeer(t, bin, dir, fsync)
			ctx := context.Background()
			const writers = 4
			acked := make([]int, writers)
			var ackedIncr [writers]int
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := redis.NewClient(&redis.Options{Addr: p.addr, DisableIdentity: true, MaxRetries: -1})
					defer c.Close()
					for n := 1; n <= 100000; n++ {
						if c.Set(ctx, fmt.Sprintf("w%d:%d", w, n), n, 0).Err() != nil {
							return
						}
						acked[w] = n
						if c.Incr(ctx, "counter").Err() != nil {
							return
						}
						ackedIncr[w]++
					}
				}()
			}
			time.Sleep(400 * time.Millisecond)
			p.cmd.Process.Kill() // SIGKILL
			p.cmd.Wait()
			wg.Wait()

			p2 := startPeer(t, bin, dir, fsync)
			defer func() {
				p2.cmd.Process.Kill()
				p2.cmd.Wait()
			}()
			c := redis.NewClient(&redis.Options{Addr: p2.addr, DisableIdentity: true})
			defer c.Close()
			total := 0
			for w := 0; w < writers; w++ {
				total += ackedIncr[w]
				if acked[w] == 0 {
					t.Fatalf("writer %d got no write acknowledged", w)
				}
				for n := 1; n <= acked[w]; n++ {
					v, err := c.Get(ctx, fmt.Sprintf("w%d:%d", w, n)).Int()
					if err != nil || v != n {
						t.Fatalf("acknowledged write w%d:%d lost after kill -9: %v %v\n%s", w, n, v, err, p2.out.String())
					}
				}
			}
			got, _ := c.Get(ctx, "counter").Int()
			if got < total || got > total+writers {
				t.Fatalf("counter = %d after %d acknowledged INCRs", got, total)
			}
			t.Logf("%s: %d acknowledged writes survived kill -9", fsync, total*2)
		})
	}
}
