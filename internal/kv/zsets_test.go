package kv

import (
	"testing"
)

func TestSortedSets(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"ZADD z 1 a 2 b 3 c", "3"},
		{"ZADD z 10 a", "0"},
		{"ZADD z CH 1 a 4 d", "2"},
		{"ZADD z NX 100 a 5 e", "1"},
		{"ZSCORE z a", "1"},
		{"ZADD z XX 7 a 100 nope", "0"},
		{"ZSCORE z a", "7"},
		{"ZSCORE z nope", "nil"},
		{"ZADD z GT 6 a", "0"},
		{"ZSCORE z a", "7"},
		{"ZADD z GT CH 8 a", "1"},
		{"ZADD z LT CH 9 a", "0"},
		{"ZADD z LT CH 1 a", "1"},
		{"ZADD z INCR 2 a", "3"},
		{"ZADD z INCR NX 2 a", "nil"},
		{"ZADD z NX XX 1 a", "ERR:ERR XX and NX options at the same time are not compatible"},
		{"ZADD z GT LT 1 a", "ERR:ERR GT, LT, and/or NX options at the same time are not compatible"},
		{"ZADD z INCR 1 a 2 b", "ERR:ERR INCR option supports a single increment-element pair"},
		{"ZADD z x a", "ERR:ERR value is not a valid float"},
		{"ZADD z 1 a 2", "ERR:ERR syntax error"},
		{"ZADD z XX 1 nokeymember", "0"},
		{"ZADD nz XX 1 a", "0"},
		{"EXISTS nz", "0"},
		{"ZCARD z", "5"},
		{"ZCARD nokey", "0"},
		{"ZRANGE z 0 -1", "[b a c d e]"},
		{"ZRANGE z 0 -1 WITHSCORES", "[b 2 a 3 c 3 d 4 e 5]"},
		{"ZRANGE z -2 -1", "[d e]"},
		{"ZRANGE z 0 0 REV", "[e]"},
		{"ZREVRANGE z 0 1", "[e d]"},
		{"ZRANGE z 3 1", "[]"},
		{"ZRANGE z 2 4 BYSCORE", "[b a c d]"},
		{"ZRANGE z (2 4 BYSCORE", "[a c d]"},
		{"ZRANGE z (3 +inf BYSCORE", "[d e]"},
		{"ZRANGE z -inf (3 BYSCORE", "[b]"},
		{"ZRANGE z 4 2 BYSCORE REV", "[d c a b]"},
		{"ZRANGE z 2 5 BYSCORE LIMIT 1 2", "[a c]"},
		{"ZRANGE z 2 5 BYSCORE LIMIT 1 -1", "[a c d e]"},
		{"ZRANGE z 0 -1 LIMIT 1 2", "ERR:ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"},
		{"ZRANGE z x 2 BYSCORE", "ERR:ERR min or max is not a float"},
		{"ZRANGEBYSCORE z 3 3", "[a c]"},
		{"ZRANGEBYSCORE z 3 5 WITHSCORES LIMIT 0 2", "[a 3 c 3]"},
		{"ZREVRANGEBYSCORE z 5 3", "[e d c a]"},
		{"ZREVRANGEBYSCORE z +inf -inf LIMIT 0 1", "[e]"},
		{"ZCOUNT z 3 4", "3"},
		{"ZCOUNT z (3 4", "1"},
		{"ZCOUNT z 10 20", "0"},
		{"ZRANK z b", "0"},
		{"ZRANK z e", "4"},
		{"ZREVRANK z e", "0"},
		{"ZRANK z nope", "nil"},
		{"ZRANK z c WITHSCORE", "[2 3]"},
		{"ZINCRBY z 10 b", "12"},
		{"ZINCRBY z 1 newm", "1"},
		{"ZINCRBY z x b", "ERR:ERR value is not a valid float"},
		{"ZMSCORE z b nope newm", "[12 nil 1]"},
		{"ZREM z newm nope", "1"},
		{"ZPOPMIN z", "[a 3]"},
		{"ZPOPMAX z", "[b 12]"},
		{"ZPOPMIN z 2", "[c 3 d 4]"},
		{"ZPOPMIN z 0", "[]"},
		{"ZPOPMAX z 10", "[e 5]"},
		{"EXISTS z", "0"},
		{"ZPOPMIN z", "[]"},
		{"ZPOPMIN z -1", "ERR:ERR value is out of range, must be positive"},
		{"ZADD l 0 a 0 b 0 c 0 d 0 e", "5"},
		{"ZRANGE l [b (d BYLEX", "[b c]"},
		{"ZRANGE l - + BYLEX LIMIT 1 2", "[b c]"},
		{"ZRANGE l (c + BYLEX", "[d e]"},
		{"ZRANGE l + - BYLEX REV", "[e d c b a]"},
		{"ZRANGEBYLEX l - [b", "[a b]"},
		{"ZREVRANGEBYLEX l [c -", "[c b a]"},
		{"ZRANGE l b d BYLEX", "ERR:ERR min or max not valid string range item"},
		{"ZRANGE l - + BYLEX WITHSCORES", "ERR:ERR syntax error, WITHSCORES not supported in combination with BYLEX"},
		{"ZADD r 1 a 2 b 3 c 4 d 5 e", "5"},
		{"ZREMRANGEBYRANK r 0 1", "2"},
		{"ZREMRANGEBYRANK r -1 -1", "1"},
		{"ZRANGE r 0 -1", "[c d]"},
		{"ZREMRANGEBYSCORE r (3 10", "1"},
		{"ZREMRANGEBYSCORE r -inf +inf", "1"},
		{"EXISTS r", "0"},
		{"ZADD f 1.5 a -2.25 b inf c -inf d", "4"},
		{"ZRANGE f 0 -1 WITHSCORES", "[d -inf b -2.25 a 1.5 c inf]"},
		{"ZSCORE f a", "1.5"},
		{"ZADD f INCR inf c", "inf"},
		{"ZADD f INCR -inf c", "ERR:ERR resulting score is not a number (NaN)"},
		{"SET str v", "OK"},
		{"ZADD str 1 a", "ERR:WRONGTYPE"},
		{"ZRANGE str 0 -1", "ERR:WRONGTYPE"},
	})
}

// TestZSetRanks checks the skip list's spans against a sorted model.
func TestZSetRanks(t *testing.T) {
	z := newZSet()
	model := map[string]float64{}
	for i := 0; i < 2000; i++ {
		m := itoa(int64(i * 7919 % 1000))
		s := float64(i*31%97) / 3
		z.add(m, s)
		model[m] = s
		if i%5 == 0 {
			victim := itoa(int64(i * 13 % 1000))
			z.remove(victim)
			delete(model, victim)
		}
	}
	if z.card() != len(model) || z.length != len(model) {
		t.Fatalf("card %d length %d, model %d", z.card(), z.length, len(model))
	}
	rank := 0
	for x := z.header.level[0].forward; x != nil; x = x.level[0].forward {
		if got := z.rank(x.member); got != rank {
			t.Fatalf("rank(%s) = %d, want %d", x.member, got, rank)
		}
		if y := z.byRank(rank); y != x {
			t.Fatalf("byRank(%d) wrong", rank)
		}
		if x.level[0].forward != nil && !zless(x.score, x.member, x.level[0].forward.score, x.level[0].forward.member) {
			t.Fatalf("order broken at %s", x.member)
		}
		rank++
	}
	if rank != len(model) {
		t.Fatalf("walked %d nodes, want %d", rank, len(model))
	}
}
