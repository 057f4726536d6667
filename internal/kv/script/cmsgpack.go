package script

import (
	"encoding/binary"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// cmsgpack is lua-cmsgpack as Redis ships it: pack (several values
// concatenated), unpack, unpack_one and unpack_limit, with its encodings:
// integers in the smallest form, doubles as float 32 when exact, tables
// whose keys are 1..n as arrays, nesting beyond 16 packed as nil.
const msgpackMaxNesting = 16

func cmsgpackLib(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, 0) // its map is made at the first name, for 32
	t.RawSetString("pack", L.NewFunction(msgpackPack))
	t.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int { return msgpackUnpack(L, 0, 0, false) }))
	t.RawSetString("unpack_one", L.NewFunction(func(L *lua.LState) int {
		return msgpackUnpack(L, 1, optInt(L, 2, 0), true)
	}))
	t.RawSetString("unpack_limit", L.NewFunction(func(L *lua.LState) int {
		return msgpackUnpack(L, checkInt(L, 2), optInt(L, 3, 0), true)
	}))
	t.RawSetString("_NAME", lua.LString("cmsgpack"))
	t.RawSetString("_VERSION", lua.LString("lua-cmsgpack 0.4.0"))
	return t
}

func msgpackPack(L *lua.LState) int {
	n := L.GetTop()
	if n == 0 {
		L.ArgError(1, "MessagePack pack needs input.")
	}
	var b []byte
	for i := 1; i <= n; i++ {
		b = msgpackAppend(b, L.Get(i), 0)
	}
	L.Push(lua.LString(b))
	return 1
}

func msgpackAppend(b []byte, v lua.LValue, level int) []byte {
	switch x := v.(type) {
	case lua.LString:
		n := len(x)
		switch {
		case n < 32:
			b = append(b, 0xa0|byte(n))
		case n <= 0xff:
			b = append(b, 0xd9, byte(n))
		case n <= 0xffff:
			b = append(b, 0xda, byte(n>>8), byte(n))
		default:
			b = append(b, 0xdb)
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
		return append(b, x...)
	case lua.LBool:
		if x {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case lua.LNumber:
		f := float64(x)
		if f == math.Floor(f) && !math.IsInf(f, 0) && f >= -9.223372036854775808e18 && f < 9.223372036854775807e18 {
			return msgpackInt(b, int64(f))
		}
		if float64(float32(f)) == f {
			b = append(b, 0xca)
			return binary.BigEndian.AppendUint32(b, math.Float32bits(float32(f)))
		}
		b = append(b, 0xcb)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
	case *lua.LTable:
		if level == msgpackMaxNesting {
			return append(b, 0xc0)
		}
		if n, ok := msgpackArrayLen(x); ok {
			b = msgpackHeader(b, n, 0x90, 0xdc, 0xdd)
			for i := 1; i <= n; i++ {
				b = msgpackAppend(b, x.RawGetInt(i), level+1)
			}
			return b
		}
		n := 0
		forEach(x, func(_, _ lua.LValue) { n++ })
		b = msgpackHeader(b, n, 0x80, 0xde, 0xdf)
		forEach(x, func(k, val lua.LValue) {
			b = msgpackAppend(b, k, level+1)
			b = msgpackAppend(b, val, level+1)
		})
		return b
	}
	return append(b, 0xc0)
}

func msgpackHeader(b []byte, n int, fix, b16, b32 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= 0xffff:
		return append(b, b16, byte(n>>8), byte(n))
	}
	b = append(b, b32)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func msgpackInt(b []byte, n int64) []byte {
	if n >= 0 {
		switch {
		case n <= 127:
			return append(b, byte(n))
		case n <= 0xff:
			return append(b, 0xcc, byte(n))
		case n <= 0xffff:
			return append(b, 0xcd, byte(n>>8), byte(n))
		case n <= 0xffffffff:
			b = append(b, 0xce)
			return binary.BigEndian.AppendUint32(b, uint32(n))
		}
		b = append(b, 0xcf)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
	switch {
	case n >= -32:
		return append(b, byte(int8(n)))
	case n >= -128:
		return append(b, 0xd0, byte(int8(n)))
	case n >= -32768:
		return append(b, 0xd1, byte(uint16(n)>>8), byte(n))
	case n >= -2147483648:
		b = append(b, 0xd2)
		return binary.BigEndian.AppendUint32(b, uint32(int32(n)))
	}
	b = append(b, 0xd3)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// msgpackArrayLen is lua-cmsgpack's table_is_an_array: every key a
// positive integer and no holes.
func msgpackArrayLen(t *lua.LTable) (int, bool) {
	count, maxKey := 0, 0
	ok := true
	forEach(t, func(k, _ lua.LValue) {
		n, isNum := k.(lua.LNumber)
		if !isNum || float64(n) < 1 || float64(n) != math.Floor(float64(n)) {
			ok = false
			return
		}
		count++
		if int(n) > maxKey {
			maxKey = int(n)
		}
	})
	return count, ok && count == maxKey
}

// msgpackUnpack decodes up to limit values (0: all) of arg 1 from offset;
// with offsets it returns the next offset (-1 at the end) first.
func msgpackUnpack(L *lua.LState, limit, offset int, offsets bool) int {
	s := L.CheckString(1)
	if offset < 0 || offset > len(s) {
		L.ArgError(3, "Start offset greater than input length.")
	}
	d := msgpackDecoder{L: L, s: s, i: offset}
	var vals []lua.LValue
	for d.i < len(d.s) && (limit == 0 || len(vals) < limit) {
		v := d.value(0)
		if d.badFormat {
			L.RaiseError("Bad data format in input.")
		}
		if d.err {
			L.RaiseError("Missing bytes in input.")
		}
		vals = append(vals, v)
	}
	if offsets {
		next := d.i
		if next >= len(d.s) {
			next = -1
		}
		L.Push(lua.LNumber(next))
	}
	for _, v := range vals {
		L.Push(v)
	}
	if offsets {
		return len(vals) + 1
	}
	return len(vals)
}

type msgpackDecoder struct {
	L         *lua.LState
	s         string
	i         int
	err       bool
	badFormat bool // the error is an unknown type, not missing bytes
}

func (d *msgpackDecoder) take(n int) string {
	if n < 0 || d.i+n > len(d.s) {
		d.err = true
		return ""
	}
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

func (d *msgpackDecoder) uint(n int) uint64 {
	s := d.take(n)
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v<<8 | uint64(s[i])
	}
	return v
}

func (d *msgpackDecoder) value(depth int) lua.LValue {
	if d.err || depth > 1000 {
		d.err = true
		return lua.LNil
	}
	c := d.uint(1)
	if d.err {
		return lua.LNil
	}
	switch {
	case c <= 0x7f:
		return lua.LNumber(c)
	case c >= 0xe0:
		return lua.LNumber(int8(c))
	case c&0xe0 == 0xa0:
		return lua.LString(d.take(int(c & 0x1f)))
	case c&0xf0 == 0x90:
		return d.array(int(c&0x0f), depth)
	case c&0xf0 == 0x80:
		return d.mapOf(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return lua.LNil
	case 0xc2:
		return lua.LFalse
	case 0xc3:
		return lua.LTrue
	case 0xca:
		return lua.LNumber(math.Float32frombits(uint32(d.uint(4))))
	case 0xcb:
		return lua.LNumber(math.Float64frombits(d.uint(8)))
	case 0xcc:
		return lua.LNumber(d.uint(1))
	case 0xcd:
		return lua.LNumber(d.uint(2))
	case 0xce:
		return lua.LNumber(d.uint(4))
	case 0xcf:
		return lua.LNumber(d.uint(8))
	case 0xd0:
		return lua.LNumber(int8(d.uint(1)))
	case 0xd1:
		return lua.LNumber(int16(d.uint(2)))
	case 0xd2:
		return lua.LNumber(int32(d.uint(4)))
	case 0xd3:
		return lua.LNumber(int64(d.uint(8)))
	case 0xd9, 0xc4:
		return lua.LString(d.take(int(d.uint(1))))
	case 0xda, 0xc5:
		return lua.LString(d.take(int(d.uint(2))))
	case 0xdb, 0xc6:
		return lua.LString(d.take(int(d.uint(4))))
	case 0xdc:
		return d.array(int(d.uint(2)), depth)
	case 0xdd:
		return d.array(int(d.uint(4)), depth)
	case 0xde:
		return d.mapOf(int(d.uint(2)), depth)
	case 0xdf:
		return d.mapOf(int(d.uint(4)), depth)
	}
	// a type lua-cmsgpack does not read (0xc1, the ext types)
	d.err, d.badFormat = true, true
	return lua.LNil
}

func (d *msgpackDecoder) array(n, depth int) lua.LValue {
	if n > len(d.s)-d.i { // each element takes a byte at least
		d.err = true
		return lua.LNil
	}
	t := d.L.CreateTable(n, 0)
	for i := 1; i <= n && !d.err; i++ {
		t.RawSetInt(i, d.value(depth+1))
	}
	return t
}

func (d *msgpackDecoder) mapOf(n, depth int) lua.LValue {
	if n > (len(d.s)-d.i)/2 {
		d.err = true
		return lua.LNil
	}
	t := d.L.CreateTable(0, n)
	for i := 0; i < n && !d.err; i++ {
		k := d.value(depth + 1)
		v := d.value(depth + 1)
		if k != lua.LNil {
			t.RawSet(k, v)
		}
	}
	return t
}
