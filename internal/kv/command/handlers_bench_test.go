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
		// run once before
		setup [][]string
		// refill, run before the first op and again every refillEvery
		// ops outside the timer, keeps the popping cases' list full
		refill []string
	}{
		{"get-miss", []string{"GET", "key:__rand_int__"}, false, 0, nil, nil},
		{"incr", []string{"INCR", "counter:__rand_int__"}, false, 0, nil, nil},
		{"lpush", []string{"LPUSH", "mylist", "xxx"}, false, 0, nil, nil},
		{"rpush", []string{"RPUSH", "mylist", "value-of-some-bytes"}, false, 0, nil, nil},
		{"lpop", []string{"LPOP", "mylist"}, false, 0, nil, listFill},
		{"rpop", []string{"RPOP", "mylist"}, false, 0, nil, listFill},
		// redis-benchmark's lrange_100 (a list of 600 elements)
		{"lrange", []string{"LRANGE", "mylist", "0", "99"}, false, 0, nil, listFill[:2+600]},
		{"hset", []string{"HSET", "myhash", "element:__rand_int__", "xxx"}, false, 0, nil, nil},
		{"zadd", []string{"ZADD", "myzset", "0", "element:__rand_int__"}, false, 0, nil, nil},
		{"zadd-rand", []string{"ZADD", "myzset", "0", "m"}, false, 3, nil, nil},
		{"xadd", []string{"XADD", "bench-stream", "*", "field", "value-of-some-bytes"}, false, 0, nil, nil},
		{"xadd-log", []string{"XADD", "bench-stream", "*", "field", "value-of-some-bytes"}, true, 0, nil, nil},
		// 10 entries from the middle of a stream of 10,000 (IDs as XADD
		// makes them, 4 a millisecond): a seek inside a chunk, 10 decoded
		{"xrange", []string{"XRANGE", "xs", "1700000001250-1", "+", "COUNT", "10"}, false, 0, xsetup(10000), nil},
		{"xrevrange", []string{"XREVRANGE", "xs", "1700000001250-1", "-", "COUNT", "10"}, false, 0, xsetup(10000), nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c, table := newTestCtx()
			args := make([][]byte, len(tc.args))
			for i, a := range tc.args {
				args[i] = []byte(a)
			}
			for _, a := range tc.setup {
				sa := make([][]byte, len(a))
				for i := range a {
					sa[i] = []byte(a[i])
				}
				c.Args, c.Cmd, c.Now = sa, table.Lookup(sa[0]), 1
				c.Keys = c.Cmd.GetKeys(sa, c.Keys[:0])
				c.LockKeys()
				c.Cmd.Handler(c)
				c.Unlock()
				c.ResetRecord()
				if len(c.W.B) > 0 && c.W.B[0] == '-' {
					b.Fatalf("%v: %q", a, c.W.B)
				}
				c.W.B = c.W.B[:0]
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

// xsetup returns the XADDs of a stream xs of n one-field entries with
// IDs as XADD makes them, 4 a millisecond.
func xsetup(n int) [][]string {
	cmds := make([][]string, n)
	for i := range cmds {
		cmds[i] = []string{"XADD", "xs", strconv.Itoa(1700000000000+i/4) + "-" + strconv.Itoa(i%4), "field", "value-of-some-bytes"}
	}
	return cmds
}

// refillEvery is how many elements the popping cases' refill pushes, and
// how often it runs.
const refillEvery = 100000

// listFill pushes refillEvery ~20-byte values.
var listFill []string
