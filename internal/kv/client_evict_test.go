package kv

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bigArgPrefix starts a SET whose value announces n bytes: the server
// holds what arrives of it in the client's query buffer.
func bigArgPrefix(n int) string {
	return "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.Itoa(n) + "\r\n"
}

// TestClientEviction: past maxmemory-clients the client holding the
// most memory is closed, whatever holds it (a query buffer, a reply not
// yet sent, a MULTI queue), and counted in evicted_clients; the others,
// which fit, are untouched.
func TestClientEviction(t *testing.T) {
	const limit = 256 << 10
	tests := []struct {
		name string
		// grow makes nc hold more than limit (and sends nothing after)
		grow func(t *testing.T, env *testEnv, nc net.Conn)
		// silent: the victim gets none of the replies it asked for (as
		// from Redis, which frees an evicted client without writing)
		silent bool
	}{
		{"query buffer", func(t *testing.T, _ *testEnv, nc net.Conn) {
			nc.Write([]byte(bigArgPrefix(4<<20) + strings.Repeat("x", 2*limit)))
		}, true},
		{"reply", func(t *testing.T, env *testEnv, nc net.Conn) {
			env.setConfig("maxmemory-clients", "0") // to store the value first
			if err := env.rdb.Set(context.Background(), "big", strings.Repeat("v", 2*limit), 0).Err(); err != nil {
				t.Fatal(err)
			}
			env.setConfig("maxmemory-clients", strconv.Itoa(limit))
			// the reader never reads: the reply stays in the server
			nc.Write([]byte(strings.Repeat("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 4)))
		}, true},
		{"multi queue", func(t *testing.T, _ *testEnv, nc net.Conn) {
			arg := strings.Repeat("m", 32<<10)
			req := "*1\r\n$5\r\nMULTI\r\n"
			for i := 0; i < 2*limit/len(arg)+1; i++ {
				req += "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.Itoa(len(arg)) + "\r\n" + arg + "\r\n"
			}
			nc.Write([]byte(req))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startServer(t, nil)
			env.setConfig("maxmemory-clients", strconv.Itoa(limit))
			bystander := env.raw()
			bystander.roundTrip("PING\r\n", "+PONG\r\n")

			victim, err := net.Dial("tcp", env.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer victim.Close()
			tt.grow(t, env, victim)
			got, closed := readUntilClosed(victim)
			if !closed {
				t.Fatal("the client over maxmemory-clients was not closed")
			}
			if tt.silent && got != 0 {
				t.Errorf("the evicted client got %d bytes of its replies, want none", got)
			}
			if v := env.infoField("evicted_clients"); v != "1" {
				t.Errorf("evicted_clients %s, want 1", v)
			}
			// the biggest went and the rest fit: the bystander stays
			bystander.roundTrip("PING\r\n", "+PONG\r\n")
			waitUntil(t, "the victim's memory to leave the total", func() bool {
				return atoi(env.infoField("mem_clients_normal")) < limit
			})
		})
	}
}

// TestClientEvictionNoEvict: a client with CLIENT NO-EVICT on is never
// closed for the limit, but its memory counts: as in Redis, the
// evictable clients go until the rest fit or none is left.
func TestClientEvictionNoEvict(t *testing.T) {
	const limit = 256 << 10
	env := startServer(t, nil)
	env.setConfig("maxmemory-clients", strconv.Itoa(limit))
	other := env.raw()
	other.roundTrip("PING\r\n", "+PONG\r\n")
	kept := env.raw()
	kept.roundTrip("CLIENT NO-EVICT on\r\n", "+OK\r\n")
	const n = 4 << 20
	kept.nc.Write([]byte(bigArgPrefix(n) + strings.Repeat("x", n/2)))
	if !closedByServer(other.nc) {
		t.Fatal("an evictable client was kept while a no-evict one held more than the limit")
	}
	kept.roundTrip(strings.Repeat("x", n/2)+"\r\nPING\r\n", "+OK\r\n+PONG\r\n")
	// while kept holds more than the limit, any other client is evicted
	// at its first command, with no reply (as in Redis): lift the limit
	// from kept before asking INFO on another connection
	kept.roundTrip("CONFIG SET maxmemory-clients 0\r\n", "+OK\r\n")
	if v := atoi(env.infoField("evicted_clients")); v < 1 {
		t.Errorf("evicted_clients %d, want at least the other client", v)
	}
}

// TestClientEvictionConfig: maxmemory-clients takes 0, a memory value or
// a percentage of maxmemory, and answers as it was set.
func TestClientEvictionConfig(t *testing.T) {
	env := startServer(t, nil)
	env.run([]step{
		{"config get maxmemory-clients", "[maxmemory-clients 0]"},
		{"config set maxmemory-clients 1mb", "OK"},
		{"config get maxmemory-clients", "[maxmemory-clients 1048576]"},
		{"config set maxmemory-clients 10%", "OK"},
		{"config get maxmemory-clients", "[maxmemory-clients 10%]"},
		{"config set maxmemory-clients 101%", "ERR:ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"},
		{"config set maxmemory-clients lots", "ERR:ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - argument must be a memory or percent value"},
		{"config set maxmemory-clients -1%", "ERR:ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - argument must be a memory or percent value"},
	})
	env.setConfig("maxmemory", "2000000")
	if got := env.srv.clientsLimit(); got != 200000 {
		t.Errorf("10%% of maxmemory 2000000: limit %d, want 200000", got)
	}
	env.setConfig("maxmemory", "0")
	if got := env.srv.clientsLimit(); got != 0 {
		t.Errorf("a percentage without maxmemory: limit %d, want 0 (none)", got)
	}
}

// TestClientEvictionSparesWhatFits: with the total under the limit
// nobody is closed, however many clients there are.
func TestClientEvictionSparesWhatFits(t *testing.T) {
	env := startServer(t, nil)
	env.setConfig("maxmemory-clients", strconv.Itoa(40*readBufSize))
	var conns []*rawConn
	for i := 0; i < 20; i++ {
		c := env.raw()
		c.roundTrip("PING\r\n", "+PONG\r\n")
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.roundTrip("PING\r\n", "+PONG\r\n")
	}
	if v := env.infoField("evicted_clients"); v != "0" {
		t.Errorf("evicted_clients %s under the limit", v)
	}
}

// TestClientEvictionSubscriber: a subscriber that stops reading holds
// its unsent messages in the server; they count as soon as its loop
// delivers them, not at the next cron (which this server runs hourly),
// so the subscriber is the client evicted.
func TestClientEvictionSubscriber(t *testing.T) {
	const limit = 256 << 10
	env := startServer(t, func(c *Config) { c.cronEvery = time.Hour })
	env.setConfig("maxmemory-clients", strconv.Itoa(limit))
	sub := env.raw()
	sub.roundTrip("SUBSCRIBE ch\r\n", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
	// 12 MB, more than loopback's socket buffers take, under the pubsub
	// class's hard limit of 32 MB; in pipelines of two, so the
	// publisher's query buffer stays well under the limit
	msg := strings.Repeat("p", 64<<10)
	ctx := context.Background()
	for range 96 {
		pipe := env.rdb.Pipeline()
		for range 2 {
			pipe.Publish(ctx, "ch", msg)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the subscriber to be evicted", func() bool {
		return env.infoField("evicted_clients") == "1"
	})
	waitUntil(t, "the subscriber to be gone", func() bool {
		return !strings.Contains(env.rdb.ClientList(ctx).Val(), "cmd=subscribe")
	})
	if err := env.rdb.Ping(ctx).Err(); err != nil {
		t.Errorf("the publisher: %v", err)
	}
}
