// Package kvtest holds workloads the data store's tests run through
// go-redis against a standalone server or a cluster: a job queue built on
// Lua scripts, in the style of Sidekiq and BullMQ (jobs added, delayed jobs
// promoted when due, fetched atomically into an active list, completed).
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The queue's scripts. Every key of a queue has the hash tag {q:<name>},
// so a queue lives in one slot of a cluster.
var (
	addScript = redis.NewScript(`
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[4], ARGV[2], id)
else
  redis.call('LPUSH', KEYS[3], id)
end
return id`)
	promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('LPUSH', KEYS[2], id)
end
return #due`)
	fetchScript = redis.NewScript(`
local id = redis.call('RPOPLPUSH', KEYS[1], KEYS[2])
if not id then return nil end
return {id, redis.call('HGET', KEYS[3], id)}`)
	completeScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return redis.error_reply('NOTACTIVE job ' .. ARGV[1] .. ' is not active')
end
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('INCR', KEYS[3])`)
)

// Queue is a queue named Name on R (a client or a cluster client).
type Queue struct {
	R    redis.Scripter
	Name string
}

func (q Queue) key(s string) string { return "{q:" + q.Name + "}:" + s }

// Add adds a job with payload, delayed until the time due (0: now).
func (q Queue) Add(ctx context.Context, payload string, due int64) (int64, error) {
	return addScript.Run(ctx, q.R, []string{q.key("id"), q.key("jobs"), q.key("wait"), q.key("delayed")}, payload, due).Int64()
}

// Promote moves the delayed jobs due at now to the waiting list.
func (q Queue) Promote(ctx context.Context, now int64) (int64, error) {
	return promoteScript.Run(ctx, q.R, []string{q.key("delayed"), q.key("wait")}, now).Int64()
}

// Fetch takes the oldest waiting job into the active list; ok is false
// when none waits.
func (q Queue) Fetch(ctx context.Context) (id, payload string, ok bool, err error) {
	res, err := fetchScript.Run(ctx, q.R, []string{q.key("wait"), q.key("active"), q.key("jobs")}).StringSlice()
	if errors.Is(err, redis.Nil) {
		return "", "", false, nil
	}
	if err != nil || len(res) != 2 {
		return "", "", false, fmt.Errorf("fetch: %v: %w", res, err)
	}
	return res[0], res[1], true, nil
}

// Complete removes an active job; it fails for a job that is not active.
func (q Queue) Complete(ctx context.Context, id string) error {
	return completeScript.Run(ctx, q.R, []string{q.key("active"), q.key("jobs"), q.key("done")}, id).Err()
}

// RunQueue adds jobs (every third one delayed until now), then runs
// workers that promote, fetch and complete until every job is done, and
// checks each job ran exactly once with its payload and that the queue is
// left empty. Every loop is bounded.
func RunQueue(ctx context.Context, r interface {
	redis.Scripter
	redis.Cmdable
}, name string, jobs, workers int) error {
	q := Queue{R: r, Name: name}
	const now = 1000
	for i := 0; i < jobs; i++ {
		due := int64(0)
		if i%3 == 0 {
			due = now - int64(i%7)
		}
		if _, err := q.Add(ctx, "job-"+strconv.Itoa(i), due); err != nil {
			return fmt.Errorf("add: %w", err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 20*jobs; round++ {
				if _, err := q.Promote(ctx, now); err != nil {
					errs <- err
					return
				}
				id, payload, ok, err := q.Fetch(ctx)
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					mu.Lock()
					done := len(seen) == jobs
					mu.Unlock()
					if done {
						return
					}
					continue
				}
				mu.Lock()
				if prev, dup := seen[id]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("job %s fetched twice (%s)", id, prev)
					return
				}
				seen[id] = payload
				mu.Unlock()
				if err := q.Complete(ctx, id); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if len(seen) != jobs {
		return fmt.Errorf("%d of %d jobs ran", len(seen), jobs)
	}
	for id, payload := range seen {
		n, _ := strconv.Atoi(id)
		if payload != "job-"+strconv.Itoa(n-1) {
			return fmt.Errorf("job %s has payload %q", id, payload)
		}
	}
	if err := q.Complete(ctx, "1"); err == nil || err.Error() != "NOTACTIVE job 1 is not active" {
		return fmt.Errorf("completing a done job: %w", err)
	}
	done, err := r.Get(ctx, q.key("done")).Int()
	if err != nil || done != jobs {
		return fmt.Errorf("done counter %d: %w", done, err)
	}
	for _, k := range []string{"wait", "active", "delayed", "jobs"} {
		if n, err := r.Exists(ctx, q.key(k)).Result(); err != nil || n != 0 {
			return fmt.Errorf("%s left: %d: %w", k, n, err)
		}
	}
	return nil
}
