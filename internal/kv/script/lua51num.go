package script

import (
	"math"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.1's number conversions in the functions that make or read them
// (number.go has the formats): tostring, tonumber, table.concat, the
// string functions' string arguments, math.huge, and the ".." operator.

// concatOp is the VM's handler of OP_CONCAT in gopher-lua's jump table.
// gopher-lua turns the operands of ".." into strings with Go's
// formatting, in code that calls no function a program could replace;
// gantry puts its own handler in the table (once, at start): when every
// operand is a string or a number it replaces the numbers, in their
// registers, with their Lua 5.1 text, then runs gopher-lua's handler.
// The registers of a concatenation are temporaries of the instruction
// (the compiler moves the operands there), and Lua 5.1's luaV_concat
// converts them in place the same way. Operands with a table or nil
// among them are left as they are: the __concat metamethod gets the
// numbers as numbers, and the error names the culprit as before. The
// table is the process's: gopher-lua is used by this package alone.
//
//go:linkname luaJumpTable github.com/yuin/gopher-lua.jumpTable
var luaJumpTable [lua.OP_NOP + 1]func(*lua.LState, uint32, unsafe.Pointer) int

func init() {
	orig := luaJumpTable[lua.OP_CONCAT]
	if orig == nil {
		return
	}
	luaJumpTable[lua.OP_CONCAT] = func(L *lua.LState, inst uint32, frame unsafe.Pointer) int {
		b := int(inst & 0x1ff)    // GETB
		c := int(inst>>9) & 0x1ff // GETC
		numbers := false
		for r := b; r <= c; r++ {
			switch L.Get(r + 1).(type) {
			case lua.LString:
			case lua.LNumber:
				numbers = true
			default:
				return orig(L, inst, frame)
			}
		}
		if numbers {
			for r := b; r <= c; r++ {
				if n, ok := L.Get(r + 1).(lua.LNumber); ok {
					L.Replace(r+1, lua.LString(luaNumber(float64(n))))
				}
			}
		}
		return orig(L, inst, frame)
	}
}

// checkNumber is luaL_checknumber: a number or a numeric string (Lua
// 5.1's reading of it).
func checkNumber(L *lua.LState, n int) float64 {
	switch x := L.Get(n).(type) {
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		if f, ok := str2number(string(x)); ok {
			return f
		}
	}
	L.TypeError(n, lua.LTNumber)
	return 0
}

// optInt is luaL_optint: def when the argument is absent or nil.
func optInt(L *lua.LState, n, def int) int {
	if L.Get(n) == lua.LNil {
		return def
	}
	return int(cLong(checkNumber(L, n)))
}

// checkLString is luaL_checklstring: a string, or a number as Lua 5.1
// prints it.
func checkLString(L *lua.LState, n int) string {
	switch x := L.Get(n).(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return luaNumber(float64(x))
	}
	L.TypeError(n, lua.LTString)
	return ""
}

// luaToString is base's tostring.
func luaToString(L *lua.LState) int {
	v := L.CheckAny(1)
	if n, ok := v.(lua.LNumber); ok {
		L.Push(lua.LString(luaNumber(float64(n))))
		return 1
	}
	L.Push(L.ToStringMeta(v))
	return 1
}

// luaToNumber is base's tonumber: base 10 reads as the parser does
// (str2number), another base as strtoul.
func luaToNumber(L *lua.LState) int {
	base := optInt(L, 2, 10)
	if base == 10 {
		switch x := L.CheckAny(1).(type) {
		case lua.LNumber:
			L.Push(x)
			return 1
		case lua.LString:
			if f, ok := str2number(string(x)); ok {
				L.Push(lua.LNumber(f))
				return 1
			}
		}
		L.Push(lua.LNil)
		return 1
	}
	s := checkLString(L, 1)
	if base < 2 || base > 36 {
		L.ArgError(2, "base out of range")
	}
	n, used := strtoul(s, base)
	if used > 0 && strings.TrimLeft(s[used:], " \t\n\r\v\f") == "" {
		L.Push(lua.LNumber(float64(n)))
		return 1
	}
	L.Push(lua.LNil)
	return 1
}

// maxConcat bounds table.concat's result, as every string a script makes
// is bounded by what it was given: Lua 5.1 has no such limit, but its
// buffer stops at the memory it can get.
const maxConcat = 512 << 20

// tableConcat is table.concat(t [, sep [, i [, j]]]), Lua 5.1's (with
// Redis's message naming the value's type).
func tableConcat(L *lua.LState) int {
	sep := ""
	if L.Get(2) != lua.LNil {
		sep = checkLString(L, 2)
	}
	t := L.CheckTable(1)
	i := optInt(L, 3, 1)
	last := 0
	if L.Get(4) == lua.LNil {
		last = t.Len()
	} else {
		last = int(cLong(checkNumber(L, 4)))
	}
	var b []byte
	for ; i <= last; i++ {
		switch x := t.RawGetInt(i).(type) {
		case lua.LString:
			b = append(b, x...)
		case lua.LNumber:
			b = appendLuaNumber(b, float64(x))
		default:
			L.RaiseError("invalid value (%s) at index %d in table for 'concat'", x.Type(), i)
		}
		if i != last {
			b = append(b, sep...)
		}
		if len(b) > maxConcat {
			L.RaiseError("not enough memory")
		}
		if i == math.MaxInt {
			break
		}
	}
	L.Push(lua.LString(b))
	return 1
}

// stringArgs are the arguments of the string functions that Lua 5.1
// reads as strings (luaL_checklstring: a number is its "%.14g" text) or
// as numbers (luaL_checkint: a numeric string is its number); gopher-lua
// prints numbers with Go's format and refuses numeric strings.
var stringArgs = map[string]string{
	"byte": "snn", "find": "ssn", "gmatch": "ss", "gsub": "sssn", "len": "s", "lower": "s",
	"match": "ssn", "rep": "sn", "reverse": "s", "sub": "snn", "upper": "s",
}

// strChar is string.char: each argument a number (or numeric string)
// that is a byte, else "invalid value" as Lua 5.1 (gopher-lua wraps).
func strChar(L *lua.LState) int {
	n := L.GetTop()
	b := make([]byte, n)
	for i := 1; i <= n; i++ {
		c := cLong(checkNumber(L, i))
		if c < 0 || c > 255 {
			L.ArgError(i, "invalid value")
		}
		b[i-1] = byte(c)
	}
	L.Push(lua.LString(b))
	return 1
}

// openNumbers installs the functions above in the globals and the
// libraries (before they are made read-only).
func (e *Engine) openNumbers() {
	L := e.L
	g := L.G.Global
	g.RawSetString("tostring", L.NewFunction(luaToString))
	g.RawSetString("tonumber", L.NewFunction(luaToNumber))
	g.RawGetString("table").(*lua.LTable).RawSetString("concat", L.NewFunction(tableConcat))
	g.RawGetString("math").(*lua.LTable).RawSetString("huge", lua.LNumber(math.Inf(1)))
	str := g.RawGetString("string").(*lua.LTable)
	for name, kinds := range stringArgs {
		orig := str.RawGetString(name).(*lua.LFunction).GFunction
		str.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			top := L.GetTop()
			for i := 0; i < top && i < len(kinds); i++ {
				kind := kinds[i]
				switch x := L.Get(i + 1).(type) {
				case lua.LNumber:
					if kind == 's' {
						L.Replace(i+1, lua.LString(luaNumber(float64(x))))
					}
				case lua.LString:
					if kind == 'n' {
						if f, ok := str2number(string(x)); ok {
							L.Replace(i+1, lua.LNumber(f))
						}
					}
				}
			}
			return orig(L)
		}))
	}
	str.RawSetString("char", L.NewFunction(strChar))
}
