package command

import (
	"strconv"
	"testing"
)

// BenchmarkHandlers measures the handlers of redis-benchmark's tests
// (bench/redis-compare.sh) as the dispatcher runs them: keys locked, the
// handler, the record asked for when logging (-log variants) and the
// reset after it, without parsing or network. redis-benchmark without -r
// sends the same key and member every time (ZADD and HSET change nothing
// after the first), LPUSH and XADD grow one value; the -rand variants
// give every op a member of 65,536 and a score of 100,000, as with -r
// (ZADD's member follows its score).
//
//	go test -run '^$' -bench Handlers -benchmem ./internal/kv/command
func BenchmarkHandlers(b *testing.B) {
	if listFill == nil {
		listFill = []string{"RPUSH", "mylist"}
		for i := 0; i < refillEvery; i++ {
			listFill = append(listFill, "value-of-some-bytes")
		}
	}
	members := make([][]byte, 1<<16)
	scores := make([][]byte, len(members))
	for i := range members {
		members[i] = []byte("element:" + strconv.Itoa(i*7919%1000003))
		scores[i] = []byte(strconv.Itoa(i * 104729 % 100000))
	}
	cases := []struct {
		name string
		args []string
		log  bool
		vary int // argument replaced by members[i] at each op (0: none)
		// refill, run before the first op and again every refillEvery
		// ops outside the timer, keeps the popping cases' list full
		refill []string
	}{
		{"get-miss", []string{"GET", "key:__rand_int__"}, false, 0, nil},
		{"incr", []string{"INCR", "counter:__rand_int__"}, false, 0, nil},
		{"lpush", []string{"LPUSH", "mylist", "xxx"}, false, 0, nil},
		{"rpush", []string{"RPUSH", "mylist", "value-of-some-bytes"}, false, 0, nil},
		{"lpop", []string{"LPOP", "mylist"}, false, 0, listFill},
		{"rpop", []string{"RPOP", "mylist"}, false, 0, listFill},
		// redis-benchmark's lrange_100 (a list of 600 elements)
		{"lrange", []string{"LRANGE", "mylist", "0", "99"}, false, 0, listFill[:2+600]},
		{"hset", []string{"HSET", "myhash", "element:__rand_int__", "xxx"}, false, 0, nil},
		{"zadd", []string{"ZADD", "myzset", "0", "element:__rand_int__"}, false, 0, nil},
		{"zadd-rand", []string{"ZADD", "myzset", "0", "m"}, false, 3, nil},
		{"xadd", []string{"XADD", "bench-stream", "*", "field", "value-of-some-bytes"}, false, 0, nil},
		{"xadd-log", []string{"XADD", "bench-stream", "*", "field", "value-of-some-bytes"}, true, 0, nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c, table := newTestCtx()
			args := make([][]byte, len(tc.args))
			for i, a := range tc.args {
				args[i] = []byte(a)
			}
			cmd := table.Lookup(args[0])
			now := int64(1)
			b.ReportAllocs()
			refill := func() {
				if tc.refill == nil {
					return
				}
				ra := make([][]byte, len(tc.refill))
				for i, a := range tc.refill {
					ra[i] = []byte(a)
				}
				rc := table.Lookup(ra[0])
				c.Args, c.Cmd = ra, rc
				c.Keys = rc.GetKeys(ra, c.Keys[:0])
				c.LockKeys()
				rc.Handler(c)
				c.Unlock()
				c.ResetRecord()
				c.W.B = c.W.B[:0]
			}
			refill()
			i := 0
			for b.Loop() {
				if tc.refill != nil && i > 0 && i%refillEvery == 0 {
					b.StopTimer()
					refill()
					b.StartTimer()
				}
				if tc.vary > 0 {
					args[tc.vary] = members[i&(len(members)-1)]
					args[tc.vary-1] = scores[(i+i>>16)&(len(scores)-1)]
				}
				i++
				now++
				c.Args, c.Cmd, c.Now = args, cmd, now
				c.Keys = cmd.GetKeys(args, c.Keys[:0])
				c.LockKeys()
				cmd.Handler(c)
				if tc.log && c.Dirty > 0 {
					_ = c.Record()
				}
				c.Unlock()
				c.ResetRecord()
				c.W.B = c.W.B[:0]
			}
		})
	}
}

// refillEvery is how many elements the popping cases' refill pushes, and
// how often it runs.
const refillEvery = 100000

// listFill pushes refillEvery ~20-byte values.
var listFill []string
