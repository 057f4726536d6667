package kv

import (
	"context"
	"strings"
	"testing"
)

// clientListLine is the CLIENT LIST line of the client named name, as
// fields; nil when there is none.
func clientListLine(t *testing.T, e *testEnv, name string, args ...any) map[string]string {
	t.Helper()
	out, err := e.rdb.Do(context.Background(), append([]any{"client", "list"}, args...)...).Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name {
			return f
		}
	}
	return nil
}

// TestClientListSubscribers: another client's CLIENT LIST line shows a
// subscriber's counts by kind, the P flag, its protocol and the type
// pubsub (CLIENT LIST TYPE, CLIENT KILL TYPE), as redis-server 7.0.15
// lists them, and its CLIENT SETINFO library; unsubscribed from
// everything it is a normal client again.
func TestClientListSubscribers(t *testing.T) {
	e := startServer(t, nil)
	r2 := e.raw()
	r2.roundTrip("CLIENT SETNAME two\r\n", "+OK\r\n")
	r2.roundTrip("SUBSCRIBE a b\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
	r2.roundTrip("PSUBSCRIBE p*\r\n", "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n")
	r3 := e.raw()
	r3.roundTrip("CLIENT SETNAME three\r\n", "+OK\r\n")
	r3.roundTrip("HELLO 3\r\n", "")
	r3.roundTrip("CLIENT SETINFO lib-name go-redis\r\nCLIENT SETINFO lib-ver 9.7\r\n", "")
	r3.roundTrip("SSUBSCRIBE s\r\n", "") // the HELLO map and the push, read below
	r3.roundTrip("PING\r\n", "")
	idle := e.raw()
	idle.roundTrip("CLIENT SETNAME idle\r\n", "+OK\r\n")

	for _, tc := range []struct {
		name string
		want map[string]string
	}{
		{"two", map[string]string{"flags": "P", "sub": "2", "psub": "1", "ssub": "0", "resp": "2"}},
		{"three", map[string]string{"flags": "P", "sub": "0", "psub": "0", "ssub": "1", "resp": "3", "lib-name": "go-redis", "lib-ver": "9.7"}},
		{"idle", map[string]string{"flags": "N", "sub": "0", "psub": "0", "ssub": "0", "resp": "2"}},
	} {
		waitUntil(t, tc.name+"'s line", func() bool {
			f := clientListLine(t, e, tc.name)
			for k, v := range tc.want {
				if f[k] != v {
					return false
				}
			}
			return true
		})
	}
	if clientListLine(t, e, "two", "type", "pubsub") == nil || clientListLine(t, e, "three", "type", "pubsub") == nil {
		t.Error("CLIENT LIST TYPE pubsub leaves a subscriber out")
	}
	if clientListLine(t, e, "idle", "type", "pubsub") != nil || clientListLine(t, e, "two", "type", "normal") != nil {
		t.Error("CLIENT LIST TYPE mixes pubsub and normal clients")
	}

	r2.roundTrip("UNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n")
	r2.roundTrip("PUNSUBSCRIBE\r\n", "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n")
	if f := clientListLine(t, e, "two", "type", "normal"); f == nil || f["flags"] != "N" || f["sub"] != "0" || f["psub"] != "0" {
		t.Errorf("unsubscribed: %v, want a normal client with no subscriptions", f)
	}
	if n, err := e.rdb.Do(context.Background(), "client", "kill", "type", "pubsub").Int(); err != nil || n != 1 {
		t.Errorf("CLIENT KILL TYPE pubsub: %d %v, want 1 (the shard subscriber)", n, err)
	}
	if !closedByServer(r3.nc) {
		t.Error("the shard subscriber was not closed")
	}
}
