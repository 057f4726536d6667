package kv

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBitmaps(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"SETBIT b 7 1", "0"},
		{"SETBIT b 7 1", "1"},
		{"GET b", "\x01"},
		{"SETBIT b 0 1", "0"},
		{"GETBIT b 0", "1"},
		{"GETBIT b 100", "0"},
		{"GETBIT nokey 0", "0"},
		{"SETBIT b 2 2", "ERR:ERR bit is not an integer or out of range"},
		{"SETBIT b -1 1", "ERR:ERR bit offset is not an integer or out of range"},
		{"SETBIT b 4294967296 1", "ERR:ERR bit offset is not an integer or out of range"},
		{"SETBIT b +5 1", "ERR:ERR bit offset is not an integer or out of range"},
		{"SETBIT b 23 1", "0"},
		{"STRLEN b", "3"},
		{"BITCOUNT b", "3"},
		{"BITCOUNT b 0 0", "2"},
		{"BITCOUNT b -1 -1", "1"},
		{"BITCOUNT b -1 -2", "0"},
		{"BITCOUNT b 1 7 BIT", "1"},
		{"BITCOUNT b 0", "ERR:ERR syntax error"},
		{"BITCOUNT b 0 1 foo", "ERR:ERR syntax error"},
		{"BITCOUNT nokey 0", "0"},
		{"BITPOS b 1", "0"},
		{"BITPOS b 0", "1"},
		{"BITPOS b 1 1", "23"},
		{"BITPOS b 1 1 7 BIT", "7"},
		{"BITPOS b 0 2 2", "16"},
		{"BITPOS b 2", "ERR:ERR The bit argument must be 1 or 0."},
		{"BITPOS nokey 0", "0"},
		{"BITPOS nokey 1", "-1"},
		{"SET ones \xff\xff", "OK"},
		{"BITPOS ones 0", "16"},
		{"BITPOS ones 0 0 -1", "-1"},
		{"SET empty \"\"", "OK"},
		{"BITPOS empty 0", "-1"},
		{"SET x ab", "OK"},
		{"SET y c", "OK"},
		{"BITOP AND d x y", "2"},
		{"GET d", "a\x00"},
		{"BITOP OR d x y", "2"},
		{"GET d", "cb"},
		{"BITOP XOR d x y nokey", "2"},
		{"GET d", "\x02b"},
		{"BITOP NOT d y", "1"},
		{"GET d", "\x9c"},
		{"BITOP NOT d x y", "ERR:ERR BITOP NOT must be called with a single source key."},
		{"BITOP FOO d x", "ERR:ERR syntax error"},
		{"BITOP AND d nokey", "0"},
		{"EXISTS d", "0"},
		{"RPUSH l a", "1"},
		{"BITOP AND d x l", "ERR:WRONGTYPE"},
		{"SETBIT l 0 1", "ERR:WRONGTYPE"},
	})
}

func TestBitfield(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"BITFIELD bf SET i8 0 -100 GET i8 0", "[0 -100]"},
		{"BITFIELD bf SET u8 0 255 GET u8 0", "[156 255]"},
		{"BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1", "[1 1]"},
		{"BITFIELD bf OVERFLOW FAIL INCRBY u2 100 3", "[nil]"},
		{"BITFIELD bf OVERFLOW SAT INCRBY i8 0 200", "[127]"},
		{"BITFIELD bf OVERFLOW WRAP INCRBY i8 0 1", "[-128]"},
		{"BITFIELD bf SET i8 #1 5 GET i8 8", "[0 5]"},
		{"BITFIELD bf", "[]"},
		{"BITFIELD nokey GET u8 0 GET i64 0", "[0 0]"},
		{"EXISTS nokey", "0"},
		{"BITFIELD bf GET I8 0", "ERR:ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."},
		{"BITFIELD bf GET u64 0", "ERR:ERR Invalid bitfield type."},
		{"BITFIELD bf GET i8 -1", "ERR:ERR bit offset is not an integer or out of range"},
		{"BITFIELD bf GET i8 #-1", "ERR:ERR bit offset is not an integer or out of range"},
		{"BITFIELD bf OVERFLOW foo", "ERR:ERR Invalid OVERFLOW type specified"},
		{"BITFIELD bf FOO", "ERR:ERR syntax error"},
		{"BITFIELD bf GET i8", "ERR:ERR syntax error"},
		{"BITFIELD bf SET i8 0 x", "ERR:ERR value is not an integer or out of range"},
		{"BITFIELD_RO bf GET i8 0", "[-128]"},
		{"BITFIELD_RO bf SET i8 0 1", "ERR:ERR BITFIELD_RO only supports the GET subcommand"},
	})
}

// TestBitsMatchRedis runs random SETBIT, BITCOUNT, BITPOS, BITOP and
// BITFIELD sequences on gantry and redis-server.
func TestBitsMatchRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(3, 4))
	keys := []string{"a", "b", "c"}
	var cmds []diffCmd
	for i := 0; i < 3000; i++ {
		k := keys[rnd.IntN(len(keys))]
		off := func() int64 { return rnd.Int64N(300) }
		idx := func() int64 { return rnd.Int64N(80) - 40 }
		unit := []any{"BYTE", "BIT"}[rnd.IntN(2)]
		switch rnd.IntN(13) {
		case 12: // all ones: BITPOS 0 finds the padding after the string
			cmds = append(cmds, diffCmd{"SET", k, strings.Repeat("\xff", rnd.IntN(5))})
		case 0, 1, 2:
			cmds = append(cmds, diffCmd{"SETBIT", k, off(), rnd.IntN(2)})
		case 3:
			cmds = append(cmds, diffCmd{"GETBIT", k, off()})
		case 4:
			cmds = append(cmds, diffCmd{"BITCOUNT", k, idx(), idx(), unit})
		case 5:
			cmds = append(cmds, diffCmd{"BITCOUNT", k, idx(), idx()}, diffCmd{"BITCOUNT", k})
		case 6:
			cmds = append(cmds, diffCmd{"BITPOS", k, rnd.IntN(2), idx(), idx(), unit})
		case 7:
			cmds = append(cmds, diffCmd{"BITPOS", k, rnd.IntN(2), idx()}, diffCmd{"BITPOS", k, rnd.IntN(2)})
		case 8:
			op := []string{"AND", "OR", "XOR", "NOT"}[rnd.IntN(4)]
			if op == "NOT" {
				cmds = append(cmds, diffCmd{"BITOP", op, "d", k})
			} else {
				cmds = append(cmds, diffCmd{"BITOP", op, "d", k, keys[rnd.IntN(3)], "nokey"})
			}
			cmds = append(cmds, diffCmd{"GET", "d"})
		default:
			cmd := diffCmd{"BITFIELD", k}
			for n := rnd.IntN(4); n >= 0; n-- {
				typ := fmt.Sprint([]string{"i", "u"}[rnd.IntN(2)], 1+rnd.IntN(63))
				o := any(off())
				if rnd.IntN(4) == 0 {
					o = fmt.Sprint("#", rnd.IntN(5))
				}
				v := rnd.Int64N(1<<40) - 1<<39
				if rnd.IntN(3) == 0 {
					v = rnd.Int64() - rnd.Int64()
				}
				switch rnd.IntN(4) {
				case 0:
					cmd = append(cmd, "GET", typ, o)
				case 1:
					cmd = append(cmd, "SET", typ, o, v)
				case 2:
					cmd = append(cmd, "INCRBY", typ, o, v)
				default:
					cmd = append(cmd, "OVERFLOW", []string{"WRAP", "SAT", "FAIL"}[rnd.IntN(3)])
				}
			}
			cmds = append(cmds, cmd, diffCmd{"GET", k})
		}
	}
	diff(t, e, r, cmds)
}
