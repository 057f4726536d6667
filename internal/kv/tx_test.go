package kv

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/redis/go-redis/v9"
)

func TestMultiExec(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"EXEC", "ERR:ERR EXEC without MULTI"},
		{"DISCARD", "ERR:ERR DISCARD without MULTI"},
	})
	r := e.raw()
	r.roundTrip("MULTI\r\n", "+OK\r\n")
	r.roundTrip("MULTI\r\n", "-ERR MULTI calls can not be nested\r\n")
	r.roundTrip("SET a 1\r\n", "+QUEUED\r\n")
	r.roundTrip("INCR a\r\n", "+QUEUED\r\n")
	r.roundTrip("LPUSH a x\r\n", "+QUEUED\r\n")
	r.roundTrip("GET a\r\n", "+QUEUED\r\n")
	// a runtime error does not stop the other commands
	r.roundTrip("EXEC\r\n", "*4\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$1\r\n2\r\n")
	r.roundTrip("MULTI\r\n", "+OK\r\n")
	r.roundTrip("SET b 1\r\n", "+QUEUED\r\n")
	r.roundTrip("NOSUCHCMD\r\n", "-ERR unknown command 'NOSUCHCMD', with args beginning with: \r\n")
	r.roundTrip("GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n")
	r.roundTrip("EXEC\r\n", "-EXECABORT Transaction discarded because of previous errors.\r\n")
	r.roundTrip("EXISTS b\r\n", ":0\r\n")
	r.roundTrip("MULTI\r\n", "+OK\r\n")
	r.roundTrip("SET b 1\r\n", "+QUEUED\r\n")
	r.roundTrip("DISCARD\r\n", "+OK\r\n")
	r.roundTrip("EXISTS b\r\n", ":0\r\n")
	r.roundTrip("MULTI\r\n", "+OK\r\n")
	r.roundTrip("WATCH a\r\n", "-ERR WATCH inside MULTI is not allowed\r\n")
	r.roundTrip("SAVE\r\n", "-ERR Command not allowed inside a transaction\r\n")
	r.roundTrip("DISCARD\r\n", "+OK\r\n")
	// keyspace-wide commands inside EXEC
	r.roundTrip("MULTI\r\n", "+OK\r\n")
	r.roundTrip("DBSIZE\r\n", "+QUEUED\r\n")
	r.roundTrip("FLUSHALL\r\n", "+QUEUED\r\n")
	r.roundTrip("KEYS *\r\n", "+QUEUED\r\n")
	r.roundTrip("EXEC\r\n", "*3\r\n:1\r\n+OK\r\n*0\r\n")
	r.roundTrip("MULTI\r\n", "+OK\r\n")
	r.roundTrip("EXEC\r\n", "*0\r\n")
}

func TestWatch(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	other := e.client(2)
	e.rdb.Set(ctx, "k", "1", 0)

	// untouched key: EXEC runs
	err := e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, "k")
			return nil
		})
		return err
	}, "k")
	if err != nil {
		t.Fatal(err)
	}
	// a write by another client in between aborts it
	err = e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		other.Set(ctx, "k", "changed", 0)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "mine", 0)
			return nil
		})
		return err
	}, "k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("err = %v, want TxFailedErr", err)
	}
	if v := e.rdb.Get(ctx, "k").Val(); v != "changed" {
		t.Fatalf("k = %q", v)
	}
	// a read does not abort; deleting a missing key does not either
	err = e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		other.Get(ctx, "k")
		other.Del(ctx, "nokey")
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "mine", 0)
			return nil
		})
		return err
	}, "k", "nokey")
	if err != nil {
		t.Fatal(err)
	}
	// a watched key that expires aborts it
	e.rdb.Set(ctx, "exp", "v", time.Second)
	err = e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		e.clock.Advance(2 * time.Second)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "exp", "new", 0)
			return nil
		})
		return err
	}, "exp")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("expired watched key: err = %v", err)
	}
	// FLUSHALL touches every watched key
	err = e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		other.FlushAll(ctx)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "x", 0)
			return nil
		})
		return err
	}, "k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("flushall: err = %v", err)
	}
	e.run([]step{{"UNWATCH", "OK"}})
}

// TestWatchIncrementsRace runs optimistic increments from several clients:
// with WATCH no increment is lost.
func TestWatchIncrementsRace(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		c := e.client(2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					err := c.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "counter").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "counter", n+1, 0)
							return nil
						})
						return err
					}, "counter")
					if err == nil {
						break
					}
					if !errors.Is(err, redis.TxFailedErr) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := e.rdb.Get(ctx, "counter").Int(); n != workers*each {
		t.Fatalf("counter = %d, want %d", n, workers*each)
	}
}

// TestMultiAtomicAcrossShards checks that a transaction moving value
// between keys of different shards is never seen half done.
func TestMultiAtomicAcrossShards(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	e.rdb.MSet(ctx, "acct:a", 100, "acct:b", 100)
	if keyspace.ShardOf([]byte("acct:a")) == keyspace.ShardOf([]byte("acct:b")) {
		t.Fatal("test keys share a shard")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := e.client(2)
		for i := 0; i < 200; i++ {
			c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.DecrBy(ctx, "acct:a", 1)
				p.IncrBy(ctx, "acct:b", 1)
				return nil
			})
		}
		close(stop)
	}()
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		vals, err := e.rdb.MGet(ctx, "acct:a", "acct:b").Result()
		if err != nil {
			t.Fatal(err)
		}
		a, b := atoi(vals[0]), atoi(vals[1])
		if a+b != 200 {
			t.Fatalf("saw a=%d b=%d", a, b)
		}
	}
	wg.Wait()
}
