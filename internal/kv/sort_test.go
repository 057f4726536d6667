package kv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gantry-project/gantry/internal/resp"
)

func TestSort(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"RPUSH l 3 1 2 10", "4"},
		{"SORT l", "[1 2 3 10]"},
		{"SORT l DESC", "[10 3 2 1]"},
		{"SORT l ALPHA", "[1 10 2 3]"},
		{"SORT l LIMIT 1 2", "[2 3]"},
		{"SORT l LIMIT -5 2", "[1 2]"},
		{"SORT l LIMIT 1 9223372036854775807", "[2 3 10]"},
		{"SORT l BY nosort", "[3 1 2 10]"},
		{"SORT l BY nosort DESC LIMIT 0 2", "[10 2]"},
		{"MSET w_1 40 w_2 30 w_3 20 w_10 10", "OK"},
		{"HSET h_1 f b", "1"},
		{"HSET h_2 f a", "1"},
		{"SORT l BY w_*", "[10 3 2 1]"},
		{"SORT l BY w_* GET # GET w_* GET h_*->f GET nokey", "[10 10 nil nil 3 20 nil nil 2 30 a nil 1 40 b nil]"},
		{"SORT l BY h_*->f ALPHA", "[3 10 2 1]"}, // absent values first, in list order
		{"SORT l BY w_* STORE dst", "4"},
		{"LRANGE dst 0 -1", "[10 3 2 1]"},
		{"SORT l GET h_*->f STORE dst", "4"},
		{"LRANGE dst 0 -1", "[b a  ]"},
		{"SORT nokey STORE dst", "0"},
		{"EXISTS dst", "0"},
		{"RPUSH bad a", "1"},
		{"SORT bad", "ERR:ERR One or more scores can't be converted into double"},
		{"SORT l LIMIT x 1", "ERR:ERR value is not an integer or out of range"},
		{"SORT l FOO", "ERR:ERR syntax error"},
		{"SORT_RO l STORE dst", "ERR:ERR syntax error"},
		{"SORT_RO l DESC", "[10 3 2 1]"},
		{"SET s x", "OK"},
		{"SORT s", "ERR:WRONGTYPE"},
		{"ZADD z 1 a 5 b 2 c", "3"},
		{"SORT z BY nosort", "[a c b]"},
		{"SORT z ALPHA DESC", "[c b a]"},
		{"SADD st 3 1 2", "3"},
		{"SORT st", "[1 2 3]"},
		{"SORT st BY nosort STORE dst", "3"}, // a stored set is sorted ALPHA
		{"LRANGE dst 0 -1", "[1 2 3]"},
		// inside a transaction the patterns' keys are read too
		{"MULTI", "OK"},
		{"SORT l BY w_* GET w_*", "QUEUED"},
		{"EXEC", "[[10 20 30 40]]"},
	})
	ctx := context.Background()
	if got := e.rdb.Do(ctx, "COMMAND", "GETKEYS", "SORT", "abc", "STORE", "invalid", "STORE", "stillbad", "STORE", "def").Val(); fmt.Sprint(got) != "[abc def]" {
		t.Errorf("COMMAND GETKEYS SORT: %v", got)
	}
}

// TestSortMatchesRedis compares SORT on lists, sets and sorted sets, by
// the elements or patterns, with redis-server.
func TestSortMatchesRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(11, 12))
	var cmds []diffCmd
	for i := 0; i < 200; i++ {
		v := fmt.Sprint(rnd.IntN(1000))
		if rnd.IntN(5) == 0 {
			v = fmt.Sprint(rnd.Float64() * 100)
		}
		cmds = append(cmds, diffCmd{"RPUSH", "l", v}, diffCmd{"SADD", "s", v}, diffCmd{"ZADD", "z", rnd.IntN(50), v},
			diffCmd{"SET", "w_" + v, rnd.IntN(100000)}, diffCmd{"HSET", "h_" + v, "f", "x" + v}) // distinct: Redis sorts ties in no set order
	}
	for _, k := range []string{"l", "s", "z"} {
		for i := 0; i < 20; i++ {
			lim := []any{"LIMIT", rnd.IntN(30) - 5, rnd.IntN(30) - 2}
			cmds = append(cmds,
				append(diffCmd{"SORT", k}, lim...),
				append(diffCmd{"SORT", k, "DESC", "ALPHA"}, lim...),
				append(diffCmd{"SORT", k, "BY", "w_*", "GET", "#", "GET", "h_*->f"}, lim...),
				append(diffCmd{"SORT", k, "BY", "w_*", "DESC", "STORE", "dst"}, lim...),
				diffCmd{"LRANGE", "dst", 0, -1},
				append(diffCmd{"SORT", k, "BY", "h_*->f", "ALPHA", "GET", "w_*"}, lim...))
			if k != "s" { // a set's own order is its hash table's
				cmds = append(cmds, append(diffCmd{"SORT", k, "BY", "nosort", "DESC"}, lim...))
			}
		}
	}
	diff(t, e, r, cmds)
}

// slotHook routes like a cluster that owns every slot: keys of one command
// must share a slot (CROSSSLOT otherwise).
type slotHook struct{}

func (slotHook) Route(r RouteRequest) string {
	for _, k := range r.Keys[1:] {
		if KeySlot(k) != KeySlot(r.Keys[0]) {
			return "CROSSSLOT Keys in request don't hash to the same slot"
		}
	}
	return ""
}

func (slotHook) Command(_ [][]byte, w *resp.Writer) { w.Simple("OK") }

func (slotHook) InfoLines(string) []string { return nil }

// TestNewCommandsClusterSlots: in cluster mode every multi-key command of
// the new types declares all its keys, so keys of different slots get
// CROSSSLOT and keys sharing a hash tag run; SORT refuses BY and GET
// patterns, as Redis Cluster does.
func TestNewCommandsClusterSlots(t *testing.T) {
	e := startServer(t, func(c *Config) { c.Cluster = slotHook{} })
	cross := "ERR:CROSSSLOT"
	e.run([]step{
		{"XREAD STREAMS a b 0 0", cross},
		{"XREAD STREAMS {t}a {t}b 0 0", "nil"},
		{"XREADGROUP GROUP g c STREAMS a b > >", cross},
		{"PFCOUNT a b", cross},
		{"PFMERGE a b", cross},
		{"PFMERGE {t}a {t}b", "OK"},
		{"BITOP AND a b c", cross},
		{"BITOP AND {t}a {t}b", "0"},
		{"ZUNIONSTORE a 1 b", cross},
		{"ZUNION 2 a b", cross},
		{"ZINTERCARD 2 a b", cross},
		{"ZDIFFSTORE {t}a 1 {t}b", "0"},
		{"ZRANGESTORE a b 0 -1", cross},
		{"ZMPOP 2 a b MIN", cross},
		{"BZMPOP 0.01 2 a b MIN", cross},
		{"BZPOPMIN a b 0.01", cross},
		{"GEOSEARCHSTORE a b FROMLONLAT 0 0 BYRADIUS 1 m", cross},
		{"GEORADIUS a 0 0 1 m STORE b", cross},
		{"GEORADIUS {t}a 0 0 1 m STORE {t}b", "0"},
		{"SORT a STORE b", cross},
		{"SORT {t}a STORE {t}b", "0"},
		{"SORT a BY w_*", "ERR:ERR BY option of SORT denied in Cluster mode."},
		{"SORT a GET #", "ERR:ERR GET option of SORT denied in Cluster mode."},
		{"SORT a BY nosort", "[]"},
	})
}
