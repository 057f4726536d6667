package kv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func recvMessage(t *testing.T, ps *redis.PubSub) *redis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		m, err := ps.Receive(ctx)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if msg, ok := m.(*redis.Message); ok {
			return msg
		}
	}
}

// TestPubSub publishes to channels, patterns and shard channels through
// go-redis, in RESP2 and RESP3, and checks PUBSUB's counts.
func TestPubSub(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			e := startServer(t, nil)
			ctx := context.Background()
			sub := e.client(proto)
			ps := sub.Subscribe(ctx, "news")
			defer ps.Close()
			if _, err := ps.Receive(ctx); err != nil { // the confirmation
				t.Fatal(err)
			}
			pps := sub.PSubscribe(ctx, "n*")
			defer pps.Close()
			if _, err := pps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			sps := sub.SSubscribe(ctx, "shard")
			defer sps.Close()
			if _, err := sps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			e.run([]step{
				{"publish news hello", "2"},
				{"publish other x", "0"},
				{"spublish shard hi", "1"},
				{"pubsub numsub news other", "[news 1 other 0]"},
				{"pubsub numpat", "1"},
				{"pubsub channels", "[news]"},
				{"pubsub channels x*", "[]"},
				{"pubsub shardchannels", "[shard]"},
				{"pubsub shardnumsub shard", "[shard 1]"},
				{"pubsub bogus", "ERR:ERR unknown subcommand"},
			})
			if m := recvMessage(t, ps); m.Channel != "news" || m.Payload != "hello" {
				t.Errorf("channel message %+v", m)
			}
			if m := recvMessage(t, pps); m.Pattern != "n*" || m.Channel != "news" || m.Payload != "hello" {
				t.Errorf("pattern message %+v", m)
			}
			if m := recvMessage(t, sps); m.Channel != "shard" || m.Payload != "hi" {
				t.Errorf("shard message %+v", m)
			}
			ps.Close()
			pps.Close()
			sps.Close()
			// closing the connections forgets their subscriptions
			waitUntil(t, "subscriptions dropped", func() bool {
				return e.rdb.Do(ctx, "pubsub", "numpat").Val() == int64(0) &&
					fmt.Sprint(e.rdb.Do(ctx, "pubsub", "channels").Val()) == "[]"
			})
		})
	}
}

// TestSubscribedModeRESP2 checks the protocol of a subscribed RESP2
// connection byte by byte: confirmations, PING's array, other commands
// refused, unsubscribing from everything; and RESP3's pushes beside
// ordinary replies.
func TestSubscribedModeRESP2(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip("SUBSCRIBE a b\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
	r.roundTrip("PING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n")
	r.roundTrip("GET x\r\n", "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
	if err := e.rdb.Publish(context.Background(), "b", "m").Err(); err != nil {
		t.Fatal(err)
	}
	r.roundTrip("", "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\nm\r\n")
	r.roundTrip("UNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
	r.roundTrip("PUNSUBSCRIBE\r\n", "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n")
	r.roundTrip("GET x\r\n", "$-1\r\n") // out of subscribed mode
	// RESET leaves subscribed mode too, with every kind of subscription
	r.roundTrip("SUBSCRIBE a\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
	r.roundTrip("PSUBSCRIBE p*\r\n", "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n")
	r.roundTrip("RESET\r\n", "+RESET\r\n")
	r.roundTrip("SET x v\r\n", "+OK\r\n")
	if n := e.rdb.Publish(context.Background(), "a", "m").Val(); n != 0 {
		t.Errorf("PUBLISH after RESET reached %d subscribers", n)
	}

	r3 := e.raw()
	r3.roundTrip("HELLO 3\r\n", "")
	br := bufio.NewReader(r3.nc)
	readUntil := func(s string) {
		t.Helper()
		r3.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got strings.Builder
		for !strings.Contains(got.String(), s) {
			b, err := br.ReadByte()
			if err != nil {
				t.Fatalf("waiting for %q: %v (got %q)", s, err, got.String())
			}
			got.WriteByte(b)
		}
	}
	readUntil("proto\r\n:3\r\n")
	r3.nc.Write([]byte("SUBSCRIBE c\r\n"))
	readUntil(">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
	r3.nc.Write([]byte("SET k v\r\nGET k\r\n"))
	readUntil("+OK\r\n$1\r\nv\r\n")
	e.rdb.Publish(context.Background(), "c", "push")
	readUntil(">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\npush\r\n")
	// publishing to itself: the message, then the count (redis-server's
	// order); inside EXEC the message follows the transaction's reply
	r3.nc.Write([]byte("PUBLISH c self\r\nPING\r\n"))
	readUntil(">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\nself\r\n:1\r\n+PONG\r\n")
	r3.nc.Write([]byte("MULTI\r\nPUBLISH c tx\r\nEXEC\r\nPING\r\n"))
	readUntil("+OK\r\n+QUEUED\r\n*1\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\ntx\r\n+PONG\r\n")
}

// TestSlowSubscriberDisconnected checks the pubsub class of
// client-output-buffer-limit: a subscriber that does not read is
// disconnected once its unsent messages pass the hard limit, and the
// server does not hold more than that for it.
func TestSlowSubscriberDisconnected(t *testing.T) {
	for _, loops := range []int{0, -1} { // event loops, then a goroutine per connection
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) {
				c.EventLoops = loops
				c.ClientOutputBufferLimit = "pubsub 262144 131072 60"
			})
			ctx := context.Background()
			nc, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096) // keep the kernel from absorbing much
			}
			nc.Write([]byte("SUBSCRIBE slow\r\n"))
			buf := make([]byte, 64)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAtLeast(nc, buf, 10); err != nil {
				t.Fatal(err)
			}
			msg := strings.Repeat("x", 64*1024)
			closed := false
			for i := 0; i < 2000 && !closed; i++ { // at most 128 MB published
				n, err := e.rdb.Publish(ctx, "slow", msg).Result()
				if err != nil {
					t.Fatal(err)
				}
				closed = n == 0
			}
			if !closed {
				t.Fatal("the subscriber that never reads was not disconnected")
			}
			if e.srv.outputLimitCloses.Load() == 0 {
				t.Error("the close was not counted")
			}
		})
	}
}

// TestKeyspaceNotifications checks notify-keyspace-events: the classes,
// keyspace and keyevent channels, and the events of commands.
func TestKeyspaceNotifications(t *testing.T) {
	tests := []struct {
		flags string
		cmds  []string
		want  []string // "channel payload"
	}{
		{"KEA", []string{"set foo bar"}, []string{"__keyspace@0__:foo set", "__keyevent@0__:set foo"}},
		{"El", []string{"set foo bar", "lpush l a", "rpop l"}, []string{"__keyevent@0__:lpush l", "__keyevent@0__:rpop l"}},
		{"Kg", []string{"set foo bar", "expire foo 100", "del foo"}, []string{"__keyspace@0__:foo expire", "__keyspace@0__:foo del"}},
		{"Kh", []string{"hmset h a 1", "hincrby h a 2"}, []string{"__keyspace@0__:h hset", "__keyspace@0__:h hincrby"}},
		{"Ks", []string{"sadd s a", "srem s x", "srem s a"}, []string{"__keyspace@0__:s sadd", "__keyspace@0__:s srem"}},
		{"Kz", []string{"zadd z 1 a", "zincrby z 1 a"}, []string{"__keyspace@0__:z zadd", "__keyspace@0__:z zincr"}},
		{"Kg", []string{"set a 1", "rename a b"}, []string{"__keyspace@0__:a rename_from", "__keyspace@0__:b rename_to"}},
		{"Kt", []string{"xgroup create st g $ mkstream", "xadd st 1 f v", "xreadgroup group g alice streams st >"},
			[]string{"__keyspace@0__:st xgroup-create", "__keyspace@0__:st xadd", "__keyspace@0__:st xgroup-createconsumer"}},
		{"En", []string{"set n1 a", "set n1 b", "set n2 a"}, []string{"__keyevent@0__:new n1", "__keyevent@0__:new n2"}},
		{"E$", []string{"eval redis.call('set',KEYS[1],'v') 1 fromscript"}, []string{"__keyevent@0__:set fromscript"}},
		// SMOVE: the destination's "sadd" only when it gains the member,
		// "del" of an emptied source
		{"Ksg", []string{"sadd src a b", "sadd dst a", "smove src dst a", "smove src dst b"},
			[]string{"__keyspace@0__:src sadd", "__keyspace@0__:dst sadd", "__keyspace@0__:src srem",
				"__keyspace@0__:src srem", "__keyspace@0__:src del", "__keyspace@0__:dst sadd"}},
	}
	for _, tt := range tests {
		t.Run(tt.flags+" "+tt.cmds[len(tt.cmds)-1], func(t *testing.T) {
			e := startServer(t, nil)
			ctx := context.Background()
			e.run([]step{{"config set notify-keyspace-events " + tt.flags, "OK"}})
			ps := e.client(2).PSubscribe(ctx, "__key*")
			defer ps.Close()
			if _, err := ps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.cmds {
				if err := e.rdb.Do(ctx, splitArgs(c)...).Err(); err != nil && !errors.Is(err, redis.Nil) {
					t.Fatalf("%s: %v", c, err)
				}
			}
			e.rdb.Publish(ctx, "__keyend", "end")
			var got []string
			for {
				m := recvMessage(t, ps)
				if m.Channel == "__keyend" {
					break
				}
				got = append(got, m.Channel+" "+m.Payload)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("config spelling", func(t *testing.T) {
		e := startServer(t, nil)
		e.run([]step{
			{"config set notify-keyspace-events KA", "OK"},
			{"config get notify-keyspace-events", "[notify-keyspace-events AK]"},
			{"config set notify-keyspace-events $lshzxeKE", "OK"},
			{"config get notify-keyspace-events", "[notify-keyspace-events $lshzxeKE]"},
			{"config set notify-keyspace-events Q", "ERR:ERR CONFIG SET failed"},
		})
	})
}
