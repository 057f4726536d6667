package peerexec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFailoverUntil: a leave asks its replica for a manual failover again
// when the slots are still here after an attempt (a failed manual
// failover changes nothing and tells nobody); only the first request's
// error ends it; the caller's context bounds it.
func TestFailoverUntil(t *testing.T) {
	refused := errors.New("ERR You should send CLUSTER FAILOVER to a replica")
	for _, tc := range []struct {
		name      string
		askErrs   []error // the answer to each request (nil past the end)
		goneAfter int     // the slots are gone during this attempt (0: never)
		cancel    bool    // the caller's context ends instead
		wantAsks  int
		wantErr   string
		wantOut   string
	}{
		{name: "first attempt", goneAfter: 1, wantAsks: 1},
		{name: "third attempt", goneAfter: 3, wantAsks: 3, wantOut: "asking 10.0.0.2:6379 again"},
		{name: "first request refused", askErrs: []error{refused}, goneAfter: 1, wantAsks: 1, wantErr: "cluster failover on 10.0.0.2:6379"},
		{name: "later refusal: already promoted, claim on its way", askErrs: []error{nil, refused}, goneAfter: 2, wantAsks: 2, wantOut: "to a replica"},
		{name: "context ends", cancel: true, wantAsks: 4, wantErr: context.Canceled.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			asks := 0
			ask := func() error {
				asks++
				if asks <= len(tc.askErrs) {
					return tc.askErrs[asks-1]
				}
				return nil
			}
			gone := func(wctx context.Context) error {
				if asks == tc.goneAfter {
					return nil
				}
				if tc.cancel && asks == tc.wantAsks {
					cancel()
				}
				<-wctx.Done()
				return wctx.Err()
			}
			var out strings.Builder
			err := failoverUntil(ctx, &out, "10.0.0.2:6379", time.Millisecond, ask, gone)
			if asks != tc.wantAsks {
				t.Errorf("%d failover requests, want %d", asks, tc.wantAsks)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q, want %q in it", out.String(), tc.wantOut)
			}
		})
	}
}
