package script

import (
	"encoding/binary"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// structLib is the struct library Redis ships (deps/lua/src/lua_struct.c,
// Roberto Ierusalimschy's 0.2): struct.pack, struct.unpack and
// struct.size with the format
//
//	> < !n   big, little endian; max alignment n (default 8)
//	x        a zero byte (pack), skip a byte (unpack)
//	b B h H l L T i[n] I[n]   signed/unsigned integers of 1, 2, 8, 8,
//	         n (default 4, at most 32) bytes
//	f d      float, double
//	s        zero-terminated string
//	c[n]     n bytes (default 1); c0 is the whole string (pack) or as
//	         many bytes as the previous value (unpack)
//
// as on Redis's x86-64 build: long and size_t are 8 bytes, the native
// order is little endian, and integers travel through a 64-bit word
// (bytes past the eighth are zero or dropped). None of its functions
// calls Lua code: numbers and strings are read without metamethods.
// What a result costs is bounded by its arguments: a count in the
// format is checked against the string it takes bytes from before any
// byte is copied, so struct.pack('c2000000000', ”) fails at once, as in
// Redis ("string too short").
func structLib(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, 3)
	t.RawSetString("pack", L.NewFunction(structPack))
	t.RawSetString("unpack", L.NewFunction(structUnpack))
	t.RawSetString("size", L.NewFunction(structSize))
	return t
}

const (
	structMaxIntSize = 32
	structMaxAlign   = 8
	// Lua 5.1's C stack limit (LUAI_MAXCSTACK): unpack's results past it
	// are "stack overflow (too many results)", as in Redis
	structMaxResults = 8000
)

type structHeader struct {
	little bool
	align  uint64
}

// structFormat walks a format string as lua_struct.c's parser does.
type structFormat struct {
	L   *lua.LState
	fmt string
	i   int
	h   structHeader
}

func newStructFormat(L *lua.LState) *structFormat {
	return &structFormat{L: L, fmt: L.CheckString(1), h: structHeader{little: true, align: 1}}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// getnum reads the count after an option; df when there is none.
func (f *structFormat) getnum(df uint64) uint64 {
	if f.i >= len(f.fmt) || !isDigit(f.fmt[f.i]) {
		return df
	}
	var a uint64
	for f.i < len(f.fmt) && isDigit(f.fmt[f.i]) {
		d := uint64(f.fmt[f.i] - '0')
		if a > math.MaxInt32/10 || a*10 > math.MaxInt32-d {
			f.L.RaiseError("integral size overflow")
		}
		a = a*10 + d
		f.i++
	}
	return a
}

// optsize is the size of option opt, reading its count.
func (f *structFormat) optsize(opt byte) uint64 {
	switch opt {
	case 'B', 'b':
		return 1
	case 'H', 'h':
		return 2
	case 'L', 'l', 'T', 'd':
		return 8
	case 'f':
		return 4
	case 'x':
		return 1
	case 'c':
		return f.getnum(1)
	case 'i', 'I':
		sz := f.getnum(4)
		if sz > structMaxIntSize {
			f.L.RaiseError("integral size %d is larger than limit of %d", sz, structMaxIntSize)
		}
		return sz
	}
	return 0
}

// toalign is the padding before an item of size at offset n.
func (f *structFormat) toalign(n uint64, opt byte, size uint64) uint64 {
	if size == 0 || opt == 'c' {
		return 0
	}
	if size > f.h.align {
		size = f.h.align
	}
	return (size - (n & (size - 1))) & (size - 1)
}

// control handles the options that are no item: endianness, alignment,
// white space; anything else is an invalid option.
func (f *structFormat) control(opt byte) {
	switch opt {
	case ' ':
	case '>':
		f.h.little = false
	case '<':
		f.h.little = true
	case '!':
		a := f.getnum(structMaxAlign)
		if a == 0 || a&(a-1) != 0 {
			f.L.RaiseError("alignment %d is not a power of 2", a)
		}
		f.h.align = a
	default:
		f.L.ArgError(1, "invalid format option '"+string([]byte{opt})+"'")
	}
}

// structWord converts a Lua number to the 64-bit word lua_struct.c packs:
// (unsigned long)(long)n for a negative n, (unsigned long)n otherwise,
// with x86-64's answers for what C leaves undefined (observed on
// redis-server 7.0.15: -2^64 and NaN pack as 1<<63, 2^64 as 0).
func structWord(n float64) uint64 {
	switch {
	case n < 0:
		if n < -(1 << 63) {
			return 1 << 63
		}
		return uint64(int64(n))
	case n != n: // NaN
		return 1 << 63
	case n < 1<<63:
		return uint64(int64(n))
	case n < 1<<64:
		return uint64(n)
	}
	return 0
}

// structString is luaL_checklstring: strings, and numbers as Lua 5.1
// prints them.
func structString(L *lua.LState, i int) string {
	if n, ok := L.Get(i).(lua.LNumber); ok {
		return lua51Number(float64(n))
	}
	return L.CheckString(i)
}

// lua51Number formats a number as Lua 5.1's tostring ("%.14g").
func lua51Number(f float64) string { return luaNumber(f) }

func structPack(L *lua.LState) int {
	f := newStructFormat(L)
	arg := 2
	var b []byte
	for f.i < len(f.fmt) {
		opt := f.fmt[f.i]
		f.i++
		size := f.optsize(opt)
		for pad := f.toalign(uint64(len(b)), opt, size); pad > 0; pad-- {
			b = append(b, 0)
		}
		switch opt {
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			v := structWord(checkNumber(L, arg))
			arg++
			start := len(b)
			for j := uint64(0); j < size; j++ {
				b = append(b, byte(v))
				v >>= 8
			}
			if !f.h.little {
				reverse(b[start:])
			}
		case 'x':
			b = append(b, 0)
		case 'f':
			v := math.Float32bits(float32(checkNumber(L, arg)))
			arg++
			b = order(f.h.little).AppendUint32(b, v)
		case 'd':
			v := math.Float64bits(checkNumber(L, arg))
			arg++
			b = order(f.h.little).AppendUint64(b, v)
		case 'c', 's':
			s := structString(L, arg)
			arg++
			if size == 0 {
				size = uint64(len(s))
			}
			if uint64(len(s)) < size {
				// Lua's argcheck names the argument after the one taken
				L.ArgError(arg, "string too short")
			}
			b = append(b, s[:size]...)
			if opt == 's' {
				b = append(b, 0)
			}
		default:
			f.control(opt)
		}
	}
	L.Push(lua.LString(b))
	return 1
}

func order(little bool) binary.AppendByteOrder {
	if little {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// structInteger reads an integer of size bytes as lua_struct.c does:
// through a 64-bit word (the last eight bytes read are kept), signed
// values extended from bit size*8-1 taken modulo 64 (x86-64's shift).
func structInteger(p []byte, little, signed bool) float64 {
	var l uint64
	if little {
		for i := len(p) - 1; i >= 0; i-- {
			l = l<<8 | uint64(p[i])
		}
	} else {
		for _, c := range p {
			l = l<<8 | uint64(c)
		}
	}
	if !signed {
		return float64(l)
	}
	mask := ^uint64(0) << (uint(len(p)*8-1) & 63)
	if l&mask != 0 {
		l |= mask
	}
	return float64(int64(l))
}

func structUnpack(L *lua.LState) int {
	f := newStructFormat(L)
	data := structString(L, 2)
	ld := uint64(len(data))
	// luaL_optinteger into a size_t: a negative start wraps around and
	// then fails as "data string too short", as in Redis
	start := int64(1)
	if L.Get(3) != lua.LNil {
		n := checkNumber(L, 3)
		if n != n || n >= 1<<63 || n < -(1<<63) {
			start = math.MinInt64
		} else {
			start = int64(n)
		}
	}
	if start == 0 {
		L.ArgError(3, "offset must be 1 or greater")
	}
	pos := uint64(start) - 1
	var out []lua.LValue
	tooShort := func(size uint64) {
		if size > ld || pos > ld-size {
			L.ArgError(2, "data string too short")
		}
	}
	for f.i < len(f.fmt) {
		opt := f.fmt[f.i]
		f.i++
		size := f.optsize(opt)
		pos += f.toalign(pos, opt, size)
		tooShort(size)
		if len(out)+2 > structMaxResults {
			L.RaiseError("stack overflow (too many results)")
		}
		switch opt {
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			signed := opt >= 'a'
			out = append(out, lua.LNumber(structInteger([]byte(data[pos:pos+size]), f.h.little, signed)))
		case 'x':
		case 'f':
			out = append(out, lua.LNumber(math.Float32frombits(order(f.h.little).(binary.ByteOrder).Uint32([]byte(data[pos:pos+4])))))
		case 'd':
			out = append(out, lua.LNumber(math.Float64frombits(order(f.h.little).(binary.ByteOrder).Uint64([]byte(data[pos:pos+8])))))
		case 'c':
			if size == 0 {
				var n float64
				ok := len(out) > 0
				if ok {
					n, ok = toNumber(out[len(out)-1])
				}
				if !ok {
					L.RaiseError("format 'c0' needs a previous size")
				}
				out = out[:len(out)-1]
				size = structWord(n)
				tooShort(size)
			}
			out = append(out, lua.LString(data[pos:pos+size]))
		case 's':
			end := -1
			for j := pos; j < ld; j++ {
				if data[j] == 0 {
					end = int(j)
					break
				}
			}
			if end < 0 {
				L.RaiseError("unfinished string in data")
			}
			size = uint64(end) - pos + 1
			out = append(out, lua.LString(data[pos:end]))
		default:
			f.control(opt)
		}
		pos += size
	}
	for _, v := range out {
		L.Push(v)
	}
	L.Push(lua.LNumber(int64(pos + 1)))
	return len(out) + 1
}

func structSize(L *lua.LState) int {
	f := newStructFormat(L)
	var pos uint64
	for f.i < len(f.fmt) {
		opt := f.fmt[f.i]
		f.i++
		size := f.optsize(opt)
		pos += f.toalign(pos, opt, size)
		if opt == 's' {
			L.ArgError(1, "option 's' has no fixed size")
		} else if opt == 'c' && size == 0 {
			L.ArgError(1, "option 'c0' has no fixed size")
		}
		if !isAlnum(opt) {
			f.control(opt)
		}
		pos += size
	}
	L.Push(lua.LNumber(int64(pos)))
	return 1
}

func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}
