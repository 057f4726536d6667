package kv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestSortedSetOps(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"ZADD a 1 x 2 y 3 z", "3"},
		{"ZADD b 10 y 20 z 30 w", "3"},
		{"SADD s x w", "2"},
		{"ZUNION 2 a b WITHSCORES", "[x 1 y 12 z 23 w 30]"},
		{"ZUNION 2 a b WEIGHTS 2 1 AGGREGATE MAX", "[x y z w]"},
		{"ZINTER 2 a b WITHSCORES", "[y 12 z 23]"},
		{"ZINTER 2 a b AGGREGATE MIN WITHSCORES", "[y 2 z 3]"},
		{"ZDIFF 2 a b WITHSCORES", "[x 1]"},
		{"ZUNION 2 a s WITHSCORES", "[w 1 x 2 y 2 z 3]"},
		{"ZINTERSTORE d 2 a s", "1"},
		{"ZRANGE d 0 -1 WITHSCORES", "[x 2]"},
		{"ZUNIONSTORE d 2 nokey nokey2", "0"},
		{"EXISTS d", "0"},
		{"ZDIFFSTORE d 1 b", "3"},
		{"ZINTERCARD 2 a b", "2"},
		{"ZINTERCARD 2 a b LIMIT 1", "1"},
		{"ZINTERCARD 2 a b LIMIT -1", "ERR:ERR LIMIT can't be negative"},
		{"ZUNION 0 a", "ERR:ERR at least 1 input key is needed for 'zunion' command"},
		{"ZUNIONSTORE d 2 a", "ERR:ERR syntax error"},
		{"ZUNION 1 a WEIGHTS x", "ERR:ERR weight value is not a float"},
		{"ZUNION 1 a AGGREGATE foo", "ERR:ERR syntax error"},
		{"ZUNIONSTORE d 1 a WITHSCORES", "ERR:ERR syntax error"},
		{"ZDIFF 1 a WEIGHTS 1", "ERR:ERR syntax error"},
		{"SET str v", "OK"},
		{"ZUNION 2 a str", "ERR:WRONGTYPE"},
		{"ZRANGESTORE r a 1 -1", "2"},
		{"ZRANGE r 0 -1", "[y z]"},
		{"ZRANGESTORE r a (1 +inf BYSCORE LIMIT 0 1", "1"},
		{"ZRANGESTORE r a 0 -1 WITHSCORES", "ERR:ERR syntax error"},
		{"ZRANGESTORE r nokey 0 -1", "0"},
		{"EXISTS r", "0"},
		{"ZADD lex 0 a 0 b 0 c 0 d", "4"},
		{"ZLEXCOUNT lex [b (d", "2"},
		{"ZLEXCOUNT lex - +", "4"},
		{"ZLEXCOUNT lex x y", "ERR:ERR min or max not valid string range item"},
		{"ZREMRANGEBYLEX lex [b [c", "2"},
		{"ZRANGE lex 0 -1", "[a d]"},
		{"ZREMRANGEBYLEX lex - +", "2"},
		{"EXISTS lex", "0"},
		{"ZRANDMEMBER nokey", "nil"},
		{"ZRANDMEMBER nokey 5", "[]"},
		{"ZRANDMEMBER a 0", "[]"},
		{"ZRANDMEMBER a 10", "sorted:[x y z]"},
		{"ZRANDMEMBER a -9223372036854775808", "ERR:ERR value is out of range"},
		{"ZRANDMEMBER a -9223372036854770000 WITHSCORES", "ERR:ERR value is out of range"},
		{"ZRANDMEMBER a -100000000", "ERR:ERR value is out of range"},
		{"ZRANDMEMBER a 1 FOO", "ERR:ERR syntax error"},
		{"ZMPOP 2 nokey a MIN COUNT 2", "[a [[x 1] [y 2]]]"},
		{"ZMPOP 1 a MAX", "[a [[z 3]]]"},
		{"EXISTS a", "0"},
		{"ZMPOP 1 a MAX", "nil"},
		{"ZMPOP 0 a MIN", "ERR:ERR numkeys should be greater than 0"},
		{"ZMPOP x a MIN", "ERR:ERR numkeys should be greater than 0"},
		{"ZMPOP 1 a MIN COUNT 0", "ERR:ERR count should be greater than 0"},
		{"ZMPOP 1 a FOO", "ERR:ERR syntax error"},
		{"BZPOPMIN b 0.01", "[b y 10]"},
		{"BZPOPMAX b nokey 0.01", "[b w 30]"},
		{"BZMPOP 0.01 1 b MIN COUNT 5", "[b [[z 20]]]"},
		{"BZPOPMIN b 0.01", "nil"},
		{"BZPOPMIN b -1", "ERR:ERR timeout is negative"},
	})
	// ZRANDMEMBER with repeats returns count members, each from the set
	res, err := e.rdb.Do(context.Background(), "ZRANDMEMBER", "b2", "-5").Result()
	if err != nil || len(res.([]any)) != 0 {
		t.Errorf("ZRANDMEMBER of a missing key: %v %v", res, err)
	}
	e.run([]step{{"ZADD one 1 m", "1"}, {"ZRANDMEMBER one -3 WITHSCORES", "[m 1 m 1 m 1]"}})
}

// TestBlockingSortedSetPops: BZPOPMIN, BZPOPMAX and BZMPOP wait for a ZADD,
// and a blocked one stays blocked when the key becomes another type.
func TestBlockingSortedSetPops(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		cmd  []any
		want string
	}{
		{[]any{"BZPOPMIN", "z", 0}, "[z a 1]"},
		{[]any{"BZPOPMAX", "other", "z", 0}, "[z b 2]"},
		{[]any{"BZMPOP", 0, 1, "z", "MAX", "COUNT", 5}, "[z [[b 2] [a 1]]]"},
	} {
		ch := make(chan string, 1)
		c := e.client(2)
		go func() { ch <- format(c.Do(ctx, tc.cmd...).Result()) }()
		waitBlocked(t, e, "z", 1)
		// a transaction that leaves z a string does not wake it for good
		e.run([]step{{"MULTI", "OK"}, {"ZADD z 0 foo", "QUEUED"}, {"DEL z", "QUEUED"}, {"SET z x", "QUEUED"}, {"EXEC", "*"}})
		e.run([]step{{"DEL z", "1"}, {"ZADD z 1 a 2 b", "2"}})
		if got := <-ch; got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.cmd, got, tc.want)
		}
		e.run([]step{{"DEL z", "*"}})
	}
}

// TestSortedSetOpsMatchRedis compares random set operations and range
// stores with redis-server.
func TestSortedSetOpsMatchRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(9, 9))
	var cmds []diffCmd
	keys := []string{"{t}a", "{t}b", "{t}c", "{t}s"}
	scores := []string{"1", "2", "-3", "0.5", "inf", "-inf", "100", "7"}
	for i := 0; i < 60; i++ {
		k := keys[rnd.IntN(3)]
		cmds = append(cmds, diffCmd{"ZADD", k, scores[rnd.IntN(len(scores))], fmt.Sprint("m", rnd.IntN(12))})
		cmds = append(cmds, diffCmd{"SADD", "{t}s", fmt.Sprint("m", rnd.IntN(12))})
	}
	for i := 0; i < 300; i++ {
		n := 1 + rnd.IntN(4)
		cmd := []any{}
		for j := 0; j < n; j++ {
			cmd = append(cmd, keys[rnd.IntN(len(keys))])
		}
		op := []string{"ZUNION", "ZINTER", "ZDIFF"}[rnd.IntN(3)]
		args := diffCmd{op, n}
		args = append(args, cmd...)
		if op != "ZDIFF" && rnd.IntN(2) == 0 {
			args = append(args, "WEIGHTS")
			for j := 0; j < n; j++ {
				args = append(args, []string{"1", "2", "-1", "0", "0.5"}[rnd.IntN(5)])
			}
		}
		if op != "ZDIFF" && rnd.IntN(2) == 0 {
			args = append(args, "AGGREGATE", []string{"SUM", "MIN", "MAX"}[rnd.IntN(3)])
		}
		store := append(diffCmd{op + "STORE", "{t}d"}, args[1:]...)
		cmds = append(cmds, append(args, "WITHSCORES"), store, diffCmd{"ZRANGE", "{t}d", 0, -1, "WITHSCORES"})
		cmds = append(cmds, append(diffCmd{"ZINTERCARD", n}, cmd...))
		src := keys[rnd.IntN(3)]
		lo, hi := scores[rnd.IntN(len(scores))], scores[rnd.IntN(len(scores))]
		cmds = append(cmds,
			diffCmd{"ZRANGESTORE", "{t}r", src, rnd.IntN(6) - 3, rnd.IntN(6) - 3},
			diffCmd{"ZRANGE", "{t}r", 0, -1, "WITHSCORES"},
			diffCmd{"ZRANGESTORE", "{t}r", src, "(" + lo, hi, "BYSCORE", "LIMIT", rnd.IntN(3), rnd.IntN(4) - 1},
			diffCmd{"ZRANGE", "{t}r", 0, -1, "WITHSCORES"},
			diffCmd{"ZADD", "{t}lex", 0, fmt.Sprint("m", rnd.IntN(12))},
			diffCmd{"ZLEXCOUNT", "{t}lex", "[m" + fmt.Sprint(rnd.IntN(12)), "(m" + fmt.Sprint(rnd.IntN(12))},
			diffCmd{"ZRANGESTORE", "{t}r", "{t}lex", "-", "(m" + fmt.Sprint(rnd.IntN(12)), "BYLEX", "REV"})
	}
	diff(t, e, r, cmds)
}

// TestBlockedClientsServedInOrder: clients blocked on the same keys are
// served in the order they blocked (Redis's rule), whatever pops them.
func TestBlockedClientsServedInOrder(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	block := func(key string, n int, args ...any) chan string {
		ch := make(chan string, 1)
		c := e.client(2)
		go func() { ch <- format(c.Do(ctx, args...).Result()) }()
		waitBlocked(t, e, key, n)
		return ch
	}
	var lists []chan string
	for i := 1; i <= 3; i++ {
		lists = append(lists, block("l", i, "BLPOP", "l", 0))
	}
	e.run([]step{{"RPUSH l a b c", "3"}})
	for i, want := range []string{"[l a]", "[l b]", "[l c]"} {
		if got := <-lists[i]; got != want {
			t.Errorf("client %d blocked on l got %s, want %s", i+1, got, want)
		}
	}
	// Redis's unit/type/zset "BZMPOP with multiple blocked clients"
	rd1 := block("z1", 1, "BZMPOP", 0, 2, "z1", "z2", "MIN", "COUNT", 1)
	rd2 := block("z1", 2, "BZMPOP", 0, 2, "z1", "z2", "MAX", "COUNT", 10)
	rd3 := block("z1", 3, "BZMPOP", 0, 2, "z1", "z2", "MIN", "COUNT", 10)
	rd4 := block("z1", 4, "BZMPOP", 0, 2, "z1", "z2", "MAX", "COUNT", 1)
	e.run([]step{
		{"MULTI", "OK"},
		{"ZADD z1 1 a 2 b 3 c 4 d 5 e", "QUEUED"},
		{"ZADD z2 1 a 2 b 3 c 4 d 5 e", "QUEUED"},
		{"EXEC", "[5 5]"},
	})
	for i, tc := range []struct {
		ch   chan string
		want string
	}{
		{rd1, "[z1 [[a 1]]]"},
		{rd2, "[z1 [[e 5] [d 4] [c 3] [b 2]]]"},
		{rd3, "[z2 [[a 1] [b 2] [c 3] [d 4] [e 5]]]"},
	} {
		if got := <-tc.ch; got != tc.want {
			t.Errorf("client %d: got %s, want %s", i+1, got, tc.want)
		}
	}
	e.run([]step{{"ZADD z2 1 a 2 b 3 c", "3"}})
	if got := <-rd4; got != "[z2 [[c 3]]]" {
		t.Errorf("client 4: got %s", got)
	}
}
