package command

import (
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

var (
	bRPUSH = []byte("RPUSH")
	bSADD  = []byte("SADD")
)

// AppendEntry appends the commands that recreate a key: SET (with PXAT),
// or RPUSH/SADD/HSET/ZADD in batches of 128 elements, or the XADD, XSETID,
// XGROUP and XCLAIM commands of a stream, then PEXPIREAT. A
// snapshot (of a log rewrite or of a full sync) is these commands for
// every key, so loading one is replaying commands; a value of a type
// without a case here is left out.
func AppendEntry(b []byte, key string, e *keyspace.Entry) []byte {
	k := []byte(key)
	var expArg []byte
	if e.Expiry() != 0 {
		expArg = strconv.AppendInt(nil, e.Expiry(), 10)
	}
	const batch = 128
	args := make([][]byte, 0, 2+2*batch)
	flush := func() {
		if len(args) > 2 {
			b = resp.AppendCommand(b, args...)
		}
		args = args[:2]
	}
	switch e.Kind() {
	case keyspace.KindString:
		if expArg != nil {
			return resp.AppendCommand(b, bSET, k, e.Bytes(), bPXAT, expArg)
		}
		return resp.AppendCommand(b, bSET, k, e.Bytes())
	case keyspace.Lists.Kind():
		v := keyspace.Lists.Of(e)
		args = append(args, bRPUSH, k)
		for i := 0; i < v.Len(); i++ {
			args = append(args, v.At(i))
			if len(args) == 2+batch {
				flush()
			}
		}
	case keyspace.Sets.Kind():
		v := keyspace.Sets.Of(e)
		args = append(args, bSADD, k)
		v.Each(func(m []byte) {
			args = append(args, m)
			if len(args) == 2+batch {
				flush()
			}
		})
	case keyspace.Hashes.Kind():
		v := keyspace.Hashes.Of(e)
		args = append(args, bHSET, k)
		v.Each(func(f, x []byte) {
			args = append(args, f, x)
			if len(args) >= 2+batch {
				flush()
			}
		})
	case keyspace.ZSets.Kind():
		v := keyspace.ZSets.Of(e)
		args = append(args, bZADD, k)
		for x := v.First(); x.Valid(); x = x.Next() {
			args = append(args, fmtScore(x.Score()), append([]byte(nil), x.MemberBytes()...))
			if len(args) >= 2+batch {
				flush()
			}
		}
	case keyspace.Streams.Kind():
		b = appendStream(b, k, keyspace.Streams.Of(e))
	default:
		return b
	}
	flush()
	if expArg != nil {
		b = resp.AppendCommand(b, bPEXAT, k, expArg)
	}
	return b
}
