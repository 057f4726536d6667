package peer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterStreamConsumerGroups runs the queue flow BullMQ- and
// Celery-like libraries build on streams, through go-redis's cluster
// client over three primaries: per queue (each queue's stream in its own
// slot, the queues spread over the shards) a consumer group, producers
// XADD jobs, two workers XREADGROUP and XACK, a third reads jobs and dies
// without acknowledging them, and a survivor takes them over with
// XAUTOCLAIM. Every job must be acknowledged exactly once and nothing
// left pending.
func TestClusterStreamConsumerGroups(t *testing.T) {
	// Cleanups run last in first: the peers stop before the leak check.
	t.Cleanup(func() { verifyNoLeaks(t) })
	ctx := context.Background()
	_, cc := startThreePrimaries(t)
	const jobs = 60
	shards := map[string]bool{}
	for _, q := range []string{"emails", "images", "reports", "billing"} {
		stream := "{bull:" + q + "}:events"
		node, err := cc.MasterForKey(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		shards[node.Options().Addr] = true
		if err := cc.XGroupCreateMkStream(ctx, stream, "workers", "$").Err(); err != nil {
			t.Fatalf("%s: XGROUP CREATE: %v", q, err)
		}
		for i := 0; i < jobs; i++ {
			if err := cc.XAdd(ctx, &redis.XAddArgs{Stream: stream, MaxLen: 1000, Approx: true,
				Values: []any{"job", fmt.Sprintf("%s-%d", q, i)}}).Err(); err != nil {
				t.Fatalf("%s: XADD: %v", q, err)
			}
		}
		acked := map[string]int{}
		read := func(consumer string, count int64) []redis.XMessage {
			res, err := cc.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: consumer,
				Streams: []string{stream, ">"}, Count: count, Block: 50 * time.Millisecond}).Result()
			if errors.Is(err, redis.Nil) {
				return nil
			}
			if err != nil {
				t.Fatalf("%s: XREADGROUP %s: %v", q, consumer, err)
			}
			return res[0].Messages
		}
		ack := func(msgs []redis.XMessage) {
			for _, m := range msgs {
				n, err := cc.XAck(ctx, stream, "workers", m.ID).Result()
				if err != nil || n != 1 {
					t.Fatalf("%s: XACK %s: %d %v", q, m.ID, n, err)
				}
				acked[m.Values["job"].(string)]++
			}
		}
		// the worker that dies takes 10 jobs and acknowledges none
		if lost := read("w-dead", 10); len(lost) != 10 {
			t.Fatalf("%s: the dying worker read %d jobs", q, len(lost))
		}
		for turn := 0; ; turn++ {
			a, b := read("w1", 7), read("w2", 5)
			if len(a)+len(b) == 0 {
				break
			}
			ack(a)
			ack(b)
			if turn > jobs {
				t.Fatalf("%s: the workers never ran out of jobs", q)
			}
		}
		sum, err := cc.XPending(ctx, stream, "workers").Result()
		if err != nil || sum.Count != 10 || sum.Consumers["w-dead"] != 10 {
			t.Fatalf("%s: XPENDING before the reclaim: %+v %v", q, sum, err)
		}
		time.Sleep(60 * time.Millisecond)
		start := "0-0"
		for {
			msgs, next, err := cc.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: "workers",
				Consumer: "w1", MinIdle: 50 * time.Millisecond, Start: start, Count: 4}).Result()
			if err != nil {
				t.Fatalf("%s: XAUTOCLAIM: %v", q, err)
			}
			ack(msgs)
			if next == "0-0" {
				break
			}
			start = next
		}
		sum, err = cc.XPending(ctx, stream, "workers").Result()
		if err != nil || sum.Count != 0 {
			t.Fatalf("%s: XPENDING after the reclaim: %+v %v", q, sum, err)
		}
		if len(acked) != jobs {
			t.Errorf("%s: %d distinct jobs acknowledged, want %d", q, len(acked), jobs)
		}
		for job, n := range acked {
			if n != 1 {
				t.Errorf("%s: job %s acknowledged %d times", q, job, n)
			}
		}
		info, err := cc.XInfoGroups(ctx, stream).Result()
		if err != nil || len(info) != 1 || info[0].Pending != 0 || info[0].EntriesRead != jobs {
			t.Errorf("%s: XINFO GROUPS %+v %v", q, info, err)
		}
	}
	if len(shards) < 2 {
		t.Errorf("the queues landed on %d shard(s): the test should spread them", len(shards))
	}
}
