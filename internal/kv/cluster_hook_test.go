package kv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// fakeHook serves keys starting with "mine" and moves the others; it
// records what it was asked.
type fakeHook struct {
	mu   sync.Mutex
	reqs []RouteRequest
}

func (h *fakeHook) Route(r RouteRequest) string {
	h.mu.Lock()
	h.reqs = append(h.reqs, RouteRequest{Write: r.Write, Asking: r.Asking, ReadOnly: r.ReadOnly})
	h.mu.Unlock()
	for _, k := range r.Keys {
		if !strings.HasPrefix(string(k), "mine") && !r.Asking {
			return "MOVED 1 127.0.0.1:1"
		}
	}
	return ""
}

func (h *fakeHook) Command(args [][]byte, w *resp.Writer) { w.Simple("HOOK " + string(args[1])) }

func (h *fakeHook) InfoLines(string) []string { return []string{"role:master"} }

func (h *fakeHook) last() RouteRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reqs[len(h.reqs)-1]
}

func TestClusterHook(t *testing.T) {
	h := &fakeHook{}
	e := startServer(t, func(c *Config) { c.Cluster = h })
	ctx := context.Background()
	c := e.rdb
	tests := []struct {
		name string
		args []any
		want string // reply or error text prefix
	}{
		{"own key runs", []any{"set", "mine1", "v"}, "OK"},
		{"other key moves", []any{"get", "theirs"}, "MOVED 1 127.0.0.1:1"},
		{"multi-key with one foreign key moves", []any{"mget", "mine1", "theirs"}, "MOVED"},
		{"keyless command is not routed", []any{"ping"}, "PONG"},
		{"whole-keyspace command is not routed", []any{"dbsize"}, "1"},
		{"cluster goes to the hook", []any{"cluster", "info"}, "HOOK info"},
		{"readonly", []any{"readonly"}, "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.Do(ctx, tt.args...).Result()
			got := fmt.Sprint(v)
			if err != nil {
				got = err.Error()
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("%v = %q, want %q", tt.args, got, tt.want)
			}
		})
	}

	// ASKING lets exactly one command through
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Do(ctx, "asking").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx, "set", "theirs", "1").Err(); err != nil {
		t.Fatalf("set after ASKING: %v", err)
	}
	if !h.last().Asking || !h.last().Write {
		t.Errorf("route request after ASKING: %+v", h.last())
	}
	if err := conn.Do(ctx, "get", "theirs").Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("second command after ASKING: %v, want MOVED", err)
	}
	if err := conn.Do(ctx, "readonly").Err(); err != nil {
		t.Fatal(err)
	}
	conn.Do(ctx, "get", "mine1")
	if r := h.last(); !r.ReadOnly || r.Write {
		t.Errorf("route request after READONLY: %+v", r)
	}

	// a MOVED while queueing aborts the transaction
	if err := conn.Do(ctx, "multi").Err(); err != nil {
		t.Fatal(err)
	}
	conn.Do(ctx, "set", "mine2", "x")
	if err := conn.Do(ctx, "set", "theirs", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("queued foreign key: %v", err)
	}
	if err := conn.Do(ctx, "exec").Err(); err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
		t.Fatalf("exec: %v, want EXECABORT", err)
	}
	if n := c.Exists(ctx, "mine2").Val(); n != 0 {
		t.Fatal("aborted transaction wrote mine2")
	}
	if info := c.Info(ctx, "cluster").Val(); !strings.Contains(info, "cluster_enabled:1") {
		t.Fatalf("INFO cluster: %q", info)
	}
}

func TestClusterCommandsStandalone(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	for _, cmd := range [][]any{{"cluster", "info"}, {"asking"}, {"readonly"}, {"readwrite"}} {
		err := e.rdb.Do(ctx, cmd...).Err()
		if err == nil || err.Error() != errNoCluster {
			t.Errorf("%v: %v, want %q", cmd, err, errNoCluster)
		}
	}
	if info := e.rdb.Info(ctx, "cluster").Val(); !strings.Contains(info, "cluster_enabled:0") {
		t.Fatalf("INFO cluster: %q", info)
	}
}

// askHook migrates every key starting with "mig": a command whose keys
// all exist runs, otherwise ASK (unless ASKING); it records whether the
// store passed Exists.
type askHook struct {
	fakeHook
	mu            sync.Mutex
	withExists    int
	withoutExists int
}

func (h *askHook) Route(r RouteRequest) string {
	h.mu.Lock()
	if r.Exists != nil {
		h.withExists++
	} else {
		h.withoutExists++
	}
	h.mu.Unlock()
	if r.Asking || r.Migrate {
		return ""
	}
	for _, k := range r.Keys {
		if strings.HasPrefix(string(k), "mig") && r.Exists != nil && !r.Exists(k) {
			return "ASK 1 127.0.0.1:2"
		}
	}
	return ""
}

// TestClusterHookExists: the store routes a command with its shards
// locked and lets the router test which keys exist (ASK while a slot
// migrates); EXEC routes its queued commands again that way.
func TestClusterHookExists(t *testing.T) {
	h := &askHook{}
	e := startServer(t, func(c *Config) { c.Cluster = h })
	ctx := context.Background()
	conn := e.rdb.Conn()
	defer conn.Close()
	if err := conn.Get(ctx, "mig1").Err(); err == nil || err.Error() != "ASK 1 127.0.0.1:2" {
		t.Fatalf("GET of a missing migrating key: %v, want ASK", err)
	}
	h.mu.Lock()
	withExists := h.withExists
	h.mu.Unlock()
	if withExists == 0 {
		t.Fatal("the store did not pass Exists")
	}
	// ASKING, then the key is created here and served without ASKING
	conn.Do(ctx, "asking")
	if err := conn.Set(ctx, "mig1", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := conn.Get(ctx, "mig1").Result(); err != nil || v != "v" {
		t.Fatalf("GET of a present key: %q %v", v, err)
	}
	// queued without existence, routed again by EXEC
	conn.Do(ctx, "multi")
	if v, err := conn.Do(ctx, "get", "mig2").Result(); err != nil || v != "QUEUED" {
		t.Fatalf("queueing: %v %v", v, err)
	}
	if err := conn.Do(ctx, "exec").Err(); err == nil || err.Error() != "ASK 1 127.0.0.1:2" {
		t.Fatalf("EXEC with a missing migrating key: %v, want ASK", err)
	}
	conn.Do(ctx, "multi")
	conn.Do(ctx, "get", "mig1")
	if res, err := conn.Do(ctx, "exec").Result(); err != nil || fmt.Sprint(res) != "[v]" {
		t.Fatalf("EXEC with a present key: %v %v", res, err)
	}
}

// switchHook routes everything here until migrating is set; then a key
// that does not exist gets ASK.
type switchHook struct {
	fakeHook
	migrating atomic.Bool
}

func (h *switchHook) Route(r RouteRequest) string {
	if !h.migrating.Load() || r.Asking {
		return ""
	}
	for _, k := range r.Keys {
		if r.Exists != nil && !r.Exists(k) {
			return "ASK 7 127.0.0.1:3"
		}
	}
	return ""
}

// TestBlockedClientRedirected: a client blocked on a key whose slot starts
// migrating away is woken by WakeBlocked and gets the redirection.
func TestBlockedClientRedirected(t *testing.T) {
	h := &switchHook{}
	e := startServer(t, func(c *Config) { c.Cluster = h })
	ctx := context.Background()
	res := make(chan error, 1)
	go func() { res <- e.rdb.BLPop(ctx, 0, "q").Err() }()
	waitBlocked(t, e, "q", 1)
	h.migrating.Store(true)
	e.srv.Keyspace().WakeBlocked()
	select {
	case err := <-res:
		if err == nil || err.Error() != "ASK 7 127.0.0.1:3" {
			t.Fatalf("blocked BLPOP: %v, want ASK", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked client was not redirected")
	}
	// after ASKING it blocks here, and a push reaches it
	conn := e.rdb.Conn()
	defer conn.Close()
	go func() {
		conn.Do(ctx, "asking")
		res <- conn.BLPop(ctx, 0, "q").Err()
	}()
	waitBlocked(t, e, "q", 1)
	// (without the ASKING restored when BLPOP left the event loop for its
	// goroutine, it would have got ASK above)
	h.migrating.Store(false)
	if err := e.client(2).RPush(ctx, "q", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("BLPOP after ASKING: %v", err)
	}
}

func TestClusterRefusedInMulti(t *testing.T) {
	e := startServer(t, func(c *Config) { c.Cluster = &fakeHook{} })
	e.run([]step{
		{"multi", "OK"},
		{"set mine1 v", "QUEUED"},
		{"cluster countkeysinslot 0", "ERR:ERR Command not allowed inside a transaction"},
		{"exec", "ERR:EXECABORT"},
	})
}
