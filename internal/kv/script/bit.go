package script

import (
	"math"

	lua "github.com/yuin/gopher-lua"
)

// bitLib is LuaBitOp (the bit table Redis ships): 32-bit operations on
// numbers, results as signed 32-bit integers.
func bitLib(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, 0) // its map is made at the first name, for 32
	arg := func(L *lua.LState, i int) uint32 {
		n := checkNumber(L, i)
		// LuaBitOp's normalisation: add 2^52+2^51 and take the low word
		return uint32(int64(math.Mod(math.Floor(n+0.5), 1<<32)))
	}
	ret := func(L *lua.LState, v uint32) int {
		L.Push(lua.LNumber(int32(v)))
		return 1
	}
	fold := func(op func(a, b uint32) uint32) lua.LGFunction {
		return func(L *lua.LState) int {
			v := arg(L, 1)
			for i := 2; i <= L.GetTop(); i++ {
				v = op(v, arg(L, i))
			}
			return ret(L, v)
		}
	}
	shift := func(op func(a uint32, n uint) uint32) lua.LGFunction {
		return func(L *lua.LState) int { return ret(L, op(arg(L, 1), uint(arg(L, 2)&31))) }
	}
	fns := map[string]lua.LGFunction{
		"tobit":   func(L *lua.LState) int { return ret(L, arg(L, 1)) },
		"bnot":    func(L *lua.LState) int { return ret(L, ^arg(L, 1)) },
		"band":    fold(func(a, b uint32) uint32 { return a & b }),
		"bor":     fold(func(a, b uint32) uint32 { return a | b }),
		"bxor":    fold(func(a, b uint32) uint32 { return a ^ b }),
		"lshift":  shift(func(a uint32, n uint) uint32 { return a << n }),
		"rshift":  shift(func(a uint32, n uint) uint32 { return a >> n }),
		"arshift": shift(func(a uint32, n uint) uint32 { return uint32(int32(a) >> n) }),
		"rol":     shift(func(a uint32, n uint) uint32 { return a<<n | a>>(32-n) }),
		"ror":     shift(func(a uint32, n uint) uint32 { return a>>n | a<<(32-n) }),
		"bswap": func(L *lua.LState) int {
			a := arg(L, 1)
			return ret(L, a>>24|(a>>8)&0xff00|(a&0xff00)<<8|a<<24)
		},
		"tohex": func(L *lua.LState) int {
			a := arg(L, 1)
			n := 8
			if L.GetTop() >= 2 {
				n = int(int32(arg(L, 2)))
			}
			digits := "0123456789abcdef"
			if n < 0 {
				n = -n
				digits = "0123456789ABCDEF"
			}
			if n > 8 {
				n = 8
			}
			b := make([]byte, n)
			for i := n - 1; i >= 0; i-- {
				b[i] = digits[a&15]
				a >>= 4
			}
			L.Push(lua.LString(b))
			return 1
		},
	}
	for name, fn := range fns {
		t.RawSetString(name, L.NewFunction(fn))
	}
	return t
}
