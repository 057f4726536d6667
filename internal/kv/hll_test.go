package kv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestHyperLogLog(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"PFADD h", "1"},
		{"EXISTS h", "1"},
		{"PFCOUNT h", "0"},
		{"PFADD h a b c", "1"},
		{"PFADD h a b c", "0"},
		{"PFCOUNT h", "3"},
		{"PFADD h \"\"", "1"},
		{"PFCOUNT nokey", "0"},
		{"PFADD h2 b c d", "1"},
		{"PFCOUNT h h2", "5"},
		{"PFMERGE m h h2", "OK"},
		{"PFCOUNT m", "5"},
		{"PFMERGE m", "OK"},
		{"PFDEBUG ENCODING m", "sparse"},
		{"PFDEBUG TODENSE m", "1"},
		{"PFDEBUG TODENSE m", "0"},
		{"PFDEBUG ENCODING m", "dense"},
		{"STRLEN m", "12304"},
		{"PFCOUNT m", "5"},
		{"PFDEBUG DECODE m", "ERR:ERR HLL encoding is not sparse"},
		{"PFDEBUG DECODE h2", "*"},
		{"PFDEBUG FOO h", "ERR:ERR Unknown PFDEBUG subcommand 'FOO'"},
		{"PFDEBUG ENCODING nokey", "ERR:ERR The specified key does not exist"},
		{"PFSELFTEST", "OK"},
		{"SET s foo", "OK"},
		{"PFADD s a", "ERR:WRONGTYPE Key is not a valid HyperLogLog string value."},
		{"PFCOUNT s", "ERR:WRONGTYPE Key is not a valid HyperLogLog string value."},
		{"PFMERGE s h", "ERR:WRONGTYPE Key is not a valid HyperLogLog string value."},
		{"RPUSH l a", "1"},
		{"PFADD l a", "ERR:WRONGTYPE Operation against a key holding the wrong kind of value"},
		// corruption: a tail after the opcodes, a broken magic, a dense
		// value of the wrong length
		{"PFADD c a b c", "1"},
		{"APPEND c hello", "*"},
		{"PFCOUNT c", "ERR:INVALIDOBJ Corrupted HLL object detected"},
		{"SETRANGE h 0 0123", "*"},
		{"PFCOUNT h", "ERR:WRONGTYPE Key is not a valid HyperLogLog string value."},
		{"SETRANGE m 100000 x", "*"},
		{"PFCOUNT m", "ERR:WRONGTYPE Key is not a valid HyperLogLog string value."},
	})
	// the cached cardinality: valid after PFCOUNT, stale after a change
	e.run([]step{
		{"DEL h", "*"},
		{"PFADD h a b c", "1"},
		{"GETRANGE h 15 15", "\x80"},
		{"PFCOUNT h", "3"},
		{"GETRANGE h 15 15", "\x00"},
		{"PFADD h a b c", "0"},
		{"GETRANGE h 15 15", "\x00"},
		{"PFADD h 1 2 3", "1"},
		{"GETRANGE h 15 15", "\x80"},
	})
	// the sparse representation turns dense past hll-sparse-max-bytes
	ctx := context.Background()
	e.run([]step{{"CONFIG SET hll-sparse-max-bytes 100", "OK"}})
	for i := 0; i < 200; i++ {
		e.rdb.PFAdd(ctx, "big", fmt.Sprint("e", i))
	}
	e.run([]step{{"PFDEBUG ENCODING big", "dense"}, {"PFCOUNT big", "200"}})
}

// TestHyperLogLogMatchesRedis compares representations (GET), counts and
// merges with redis-server's on the same elements.
func TestHyperLogLogMatchesRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	var cmds []diffCmd
	for k := 0; k < 8; k++ {
		key := fmt.Sprint("h", k)
		n := []int{0, 1, 7, 60, 300, 1500, 5000, 40000}[k]
		for i := 0; i < n; {
			cmd := diffCmd{"PFADD", key}
			for j := 0; j < 100 && i < n; j, i = j+1, i+1 {
				cmd = append(cmd, fmt.Sprint(rnd.Float64()))
			}
			cmds = append(cmds, cmd)
			if k < 5 {
				cmds = append(cmds, diffCmd{"GET", key})
			}
		}
		cmds = append(cmds, diffCmd{"PFADD", key}, diffCmd{"PFCOUNT", key}, diffCmd{"GET", key},
			diffCmd{"PFDEBUG", "ENCODING", key})
		if k < 5 {
			cmds = append(cmds, diffCmd{"PFDEBUG", "DECODE", key})
		}
	}
	// binary elements and every byte value
	bin := diffCmd{"PFADD", "bin"}
	for i := 0; i < 256; i++ {
		bin = append(bin, string([]byte{byte(i), byte(255 - i), 0, byte(i)}))
	}
	cmds = append(cmds, bin, diffCmd{"GET", "bin"}, diffCmd{"PFCOUNT", "bin"})
	cmds = append(cmds, lines(`
		PFCOUNT h0 h1 h2 h3 h4 h5 h6 h7
		PFCOUNT h2 h3
		PFMERGE m h2 h3 h4
		GET m
		PFCOUNT m
		PFMERGE m2 h4 h6
		GET m2
		PFMERGE h3 h2
		GET h3
		PFDEBUG GETREG h4
		GET h4
		PFDEBUG TODENSE h2
		GET h2
		CONFIG SET hll-sparse-max-bytes 200
		PFADD h1 x1 x2 x3 x4 x5 x6 x7 x8 x9 y1 y2 y3 y4 y5 y6 y7 y8 y9 z1 z2 z3 z4 z5 z6 z7 z8 z9
		PFDEBUG ENCODING h1
		GET h1
		CONFIG SET hll-sparse-max-bytes 3000
	`)...)
	diff(t, e, r, cmds)
}
