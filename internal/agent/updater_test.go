package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestUpdaterCoalescesAndRetries(t *testing.T) {
	var mu sync.Mutex
	var batches [][]*structs.AllocClientUpdate
	fail := 1 // the first send fails
	sent := make(chan struct{}, 10)
	send := func(_ context.Context, ups []*structs.AllocClientUpdate) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			sent <- struct{}{}
			return errors.New("server unavailable")
		}
		batches = append(batches, ups)
		sent <- struct{}{}
		return nil
	}
	u := newUpdater(time.Millisecond, time.Now, send, func(time.Duration) {})
	// Three reports of one allocation and one of another before the
	// window ends: one batch with the latest of each.
	u.push(&structs.AllocClientUpdate{ID: "a", ClientStatus: "pending"})
	u.push(&structs.AllocClientUpdate{ID: "a", ClientStatus: "running"})
	u.push(&structs.AllocClientUpdate{ID: "b", ClientStatus: "running"})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	close(ready)
	done := make(chan struct{})
	go func() {
		u.run(ctx, ready, func(error) {})
		close(done)
	}()
	<-sent // the failed attempt
	// A newer report queued during the failure replaces the failed one.
	u.push(&structs.AllocClientUpdate{ID: "a", ClientStatus: "complete"})
	<-sent
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 1 || len(batches[0]) != 2 {
		t.Fatalf("batches = %v, want one of 2 updates", batches)
	}
	got := map[string]string{}
	for _, up := range batches[0] {
		got[up.ID] = up.ClientStatus
	}
	if got["a"] != "complete" || got["b"] != "running" {
		t.Fatalf("sent %v, want a=complete b=running", got)
	}
}

func TestUpdaterDropsRefusedBatch(t *testing.T) {
	refusedErr := errors.New("refused")
	calls := make(chan []*structs.AllocClientUpdate, 10)
	first := true
	send := func(_ context.Context, ups []*structs.AllocClientUpdate) error {
		calls <- ups
		if first {
			first = false
			return refusedErr
		}
		return nil
	}
	u := newUpdater(time.Millisecond, time.Now, send, func(time.Duration) {})
	u.permanent = func(err error) bool { return errors.Is(err, refusedErr) }
	u.push(&structs.AllocClientUpdate{ID: "bad", ClientStatus: "?"})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	close(ready)
	done := make(chan struct{})
	go func() {
		u.run(ctx, ready, func(error) {})
		close(done)
	}()
	<-calls
	u.push(&structs.AllocClientUpdate{ID: "good", ClientStatus: "running"})
	second := <-calls
	cancel()
	<-done
	if len(second) != 1 || second[0].ID != "good" {
		t.Fatalf("second batch = %+v, want only the new report", second)
	}
}
