package kv

import (
	"context"
	"fmt"
	"strconv"
	"testing"
)

// TestXReadGroupConsumerWhenServed: as Redis 7.0, XREADGROUP makes its
// consumer when it serves it (new entries for ">", or a read of its
// history), not when ">" finds nothing new, whether it then replies
// nothing or blocks: a blocked consumer appears once an entry comes for
// it, never if it is unblocked without one.
func TestXReadGroupConsumerWhenServed(t *testing.T) {
	tests := []struct {
		name  string
		setup []step
		read  string
		// block: the read blocks; then serve (XADD) or unblock it
		block, serve bool
		want         string // the group's consumers
	}{
		{name: "nothing new", read: "XREADGROUP GROUP g c STREAMS s >", want: "[]"},
		{name: "nothing new with count", read: "XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s >", want: "[]"},
		{name: "new entry", setup: []step{{"XADD s 1-1 f v", "1-1"}}, read: "XREADGROUP GROUP g c STREAMS s >", want: "[c]"},
		{name: "history", read: "XREADGROUP GROUP g c STREAMS s 0", want: "[c]"},
		{name: "all read already", setup: []step{{"XADD s 1-1 f v", "1-1"}, {"XREADGROUP GROUP g first STREAMS s >", "*"}},
			read: "XREADGROUP GROUP g c STREAMS s >", want: "[first]"},
		{name: "blocked then unblocked", read: "XREADGROUP GROUP g c BLOCK 0 STREAMS s >", block: true, want: "[]"},
		{name: "blocked then served", read: "XREADGROUP GROUP g c BLOCK 0 NOACK STREAMS s >", block: true, serve: true, want: "[c]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, nil)
			ctx := context.Background()
			e.run([]step{{"XGROUP CREATE s g $ MKSTREAM", "OK"}})
			e.run(tc.setup)
			if !tc.block {
				e.run([]step{{tc.read, "*"}})
			} else {
				r := e.raw()
				id := clientID(t, r)
				r.roundTrip(tc.read+"\r\n", "")
				waitBlockedCount(t, e, 1)
				if got := consumerNames(t, e); got != "[]" {
					t.Errorf("consumers while blocked: %s, want none", got)
				}
				if tc.serve {
					e.run([]step{{"XADD s 5-1 f v", "5-1"}})
					r.roundTrip("", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
				} else {
					if n := e.rdb.Do(ctx, "CLIENT", "UNBLOCK", strconv.FormatInt(id, 10)).Val(); n != int64(1) {
						t.Fatalf("CLIENT UNBLOCK: %v", n)
					}
					r.roundTrip("", "*-1\r\n")
				}
				waitBlockedCount(t, e, 0)
			}
			if got := consumerNames(t, e); got != tc.want {
				t.Errorf("consumers %s, want %s", got, tc.want)
			}
		})
	}
}

// consumerNames lists the consumers of group g of stream s.
func consumerNames(t *testing.T, e *testEnv) string {
	t.Helper()
	return consumerNamesOf(t, e, "s", "g")
}

// consumerNamesOf lists the consumers of group of stream key.
func consumerNamesOf(t *testing.T, e *testEnv, key, group string) string {
	t.Helper()
	res, err := e.rdb.XInfoConsumers(context.Background(), key, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, c := range res {
		names = append(names, c.Name)
	}
	return fmt.Sprint(names)
}
