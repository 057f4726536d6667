package kv

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// A blocked command is one call in INFO commandstats, whether it ends
// with data or an error, though an event loop hands it to a goroutine
// that runs it again (Redis's "XGROUP DESTROY should unblock XREADGROUP
// with -NOGROUP").
func TestBlockedCommandCountsOnce(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	e.run([]step{
		{"XGROUP CREATE s g $ MKSTREAM", "OK"},
		{"CONFIG RESETSTAT", "OK"},
	})
	blocked := e.client(2)
	done := make(chan error, 1)
	go func() {
		done <- blocked.Do(ctx, "XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">").Err()
	}()
	for i := 0; ; i++ {
		info, _ := e.rdb.Info(ctx, "clients").Result()
		if regexp.MustCompile(`blocked_clients:1\r`).MatchString(info) {
			break
		}
		if i == 500 {
			t.Fatal("XREADGROUP did not block")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.run([]step{{"XGROUP DESTROY s g", "1"}})
	if err := <-done; err == nil || err.Error()[:7] != "NOGROUP" {
		t.Fatalf("blocked XREADGROUP: %v", err)
	}
	info, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := `cmdstat_xreadgroup:calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=1`
	if !regexp.MustCompile(want).MatchString(info) {
		t.Errorf("commandstats:\n%s\nwant %s", info, want)
	}
}
