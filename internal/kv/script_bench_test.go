package kv

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkEvalshaPipelined runs redis-benchmark's EVALSHA test (a cached
// script that INCRs a random key) through the network path: 8 clients,
// pipelines of 16.
func BenchmarkEvalshaPipelined(b *testing.B) {
	t := &testing.T{}
	e := startServer(t, func(c *Config) { c.EventLoops = 2 })
	defer e.srv.Close()
	ctx := context.Background()
	sha, err := e.rdb.ScriptLoad(ctx, "return redis.call('incr', KEYS[1])").Result()
	if err != nil {
		b.Fatal(err)
	}
	const clients, depth = 8, 16
	cs := make([]*redis.Client, clients)
	for i := range cs {
		cs[i] = redis.NewClient(&redis.Options{Addr: e.addr, DisableIdentity: true, PoolSize: 1})
		defer cs[i].Close()
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/(clients*depth) + 1
	for i := range cs {
		wg.Add(1)
		go func(c *redis.Client, i int) {
			defer wg.Done()
			for r := 0; r < per; r++ {
				p := c.Pipeline()
				for j := 0; j < depth; j++ {
					p.EvalSha(ctx, sha, []string{fmt.Sprintf("key:%d", (r*depth+j+i*7919)%100000)})
				}
				if _, err := p.Exec(ctx); err != nil {
					b.Errorf("pipeline: %v", err)
					return
				}
			}
		}(cs[i], i)
	}
	wg.Wait()
}

// BenchmarkEvalInMulti runs MULTI, EVALSHA (an INCR), EXEC from one
// client: with 16 databases EXEC locks every shard of every database,
// since the script may SELECT; with one database, every shard of it.
func BenchmarkEvalInMulti(b *testing.B) {
	for _, dbs := range []int{1, 16} {
		b.Run(fmt.Sprintf("databases=%d", dbs), func(b *testing.B) {
			t := &testing.T{}
			e := startServer(t, func(c *Config) { c.Databases = dbs })
			defer e.srv.Close()
			ctx := context.Background()
			sha, err := e.rdb.ScriptLoad(ctx, "return redis.call('incr', KEYS[1])").Result()
			if err != nil {
				b.Fatal(err)
			}
			c := redis.NewClient(&redis.Options{Addr: e.addr, DisableIdentity: true, PoolSize: 1})
			defer c.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := c.TxPipeline()
				p.EvalSha(ctx, sha, []string{"k"})
				if _, err := p.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
