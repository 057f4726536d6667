package script

import (
	"fmt"
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// strFormat is Lua 5.1's string.format (lstrlib.c's str_format), which
// gopher-lua's (Go's fmt.Sprintf over Lua values) is not: items are
// C's printf conversions "%[-+ #0][width][.precision]c" with width and
// precision of two digits at most, numbers are taken by Lua 5.1's
// rules (a numeric string is a number, anything else "number expected"),
// %d and %x convert through C's long and unsigned long (x86-64's answers
// where C leaves it undefined), %s takes strings and numbers only (no
// __tostring in Lua 5.1) and, like C's sprintf, stops at a zero byte
// unless the string is 100 bytes or more and has no precision (Lua 5.1
// then adds it whole). It calls no Lua code.
func strFormat(L *lua.LState) int {
	format := structString(L, 1)
	top := L.GetTop()
	arg := 1
	var b []byte
	for i := 0; i < len(format); {
		c := format[i]
		i++
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i < len(format) && format[i] == '%' {
			b = append(b, '%')
			i++
			continue
		}
		arg++
		if arg > top {
			L.ArgError(arg, "no value")
		}
		// flags, width and precision
		start := i
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			i++
		}
		if i-start >= len("-+ #0")+1 {
			L.RaiseError("invalid format (repeated flags)")
		}
		flags := format[start:i]
		width, prec := 0, -1
		for n := 0; n < 2 && i < len(format) && isDigit(format[i]); n++ {
			width = width*10 + int(format[i]-'0')
			i++
		}
		if i < len(format) && format[i] == '.' {
			i++
			prec = 0
			for n := 0; n < 2 && i < len(format) && isDigit(format[i]); n++ {
				prec = prec*10 + int(format[i]-'0')
				i++
			}
		}
		if i < len(format) && isDigit(format[i]) {
			L.RaiseError("invalid format (width or precision too long)")
		}
		if i >= len(format) {
			L.RaiseError("invalid option '%s' to 'format'", "%")
		}
		conv := format[i]
		i++
		f := &cFormat{flags: flags, width: width, prec: prec}
		switch conv {
		case 'd', 'i':
			b = fmt.Appendf(b, f.goFormat("d", "#"), cLong(formatNumber(L, arg)))
		case 'o', 'u', 'x', 'X':
			u := structWord(formatNumber(L, arg))
			drop := "+ "
			if u == 0 && conv != 'o' {
				drop += "#" // C prints no 0x for a zero
			}
			verb := string(conv)
			if conv == 'u' {
				verb = "d"
			}
			b = fmt.Appendf(b, f.goFormat(verb, drop), u)
		case 'e', 'E', 'f', 'g', 'G':
			n := formatNumber(L, arg)
			if math.IsInf(n, 0) || math.IsNaN(n) {
				s := "inf"
				if math.IsNaN(n) {
					s = "nan"
				}
				if conv == 'E' || conv == 'G' {
					s = strings.ToUpper(s)
				}
				switch {
				case math.Signbit(n):
					s = "-" + s
				case strings.Contains(flags, "+"):
					s = "+" + s
				case strings.Contains(flags, " "):
					s = " " + s
				}
				b = f.pad(b, s)
				continue
			}
			if f.prec < 0 {
				f.prec = 6
			}
			b = fmt.Appendf(b, f.goFormat(string(conv), ""), n)
		case 'c':
			n := formatNumber(L, arg)
			var ch byte
			if n > math.MinInt32-1 && n < math.MaxInt32+1 {
				ch = byte(int32(n))
			}
			f.prec = -1
			b = f.pad(b, string([]byte{ch}))
		case 's':
			s := structString(L, arg)
			if prec < 0 && len(s) >= 100 {
				b = append(b, s...)
				continue
			}
			if z := strings.IndexByte(s, 0); z >= 0 {
				s = s[:z]
			}
			if prec >= 0 && len(s) > prec {
				s = s[:prec]
			}
			b = f.pad(b, s)
		case 'q':
			b = appendQuoted(b, structString(L, arg))
		default:
			L.RaiseError("invalid option '%%%c' to 'format'", conv)
		}
	}
	L.Push(lua.LString(b))
	return 1
}

// cFormat is one printf item's flags, width and precision (-1: none).
type cFormat struct {
	flags       string
	width, prec int
}

// goFormat is the item as a fmt verb, without the flags in drop.
func (f *cFormat) goFormat(verb, drop string) string {
	s := "%"
	for i := 0; i < len(f.flags); i++ {
		if strings.IndexByte(drop, f.flags[i]) < 0 && strings.IndexByte(s, f.flags[i]) < 0 {
			s += f.flags[i : i+1]
		}
	}
	if f.width > 0 {
		s += fmt.Sprint(f.width)
	}
	if f.prec >= 0 {
		s += "." + fmt.Sprint(f.prec)
	}
	return s + verb
}

// pad appends s padded with spaces to the width (counted in bytes, as C
// does), left-justified with '-'; a zero byte ends the item, as it ends
// C's buffer.
func (f *cFormat) pad(b []byte, s string) []byte {
	n := f.width - len(s)
	left := strings.Contains(f.flags, "-")
	if !left {
		for ; n > 0; n-- {
			b = append(b, ' ')
		}
	}
	if z := strings.IndexByte(s, 0); z >= 0 {
		return append(b, s[:z]...)
	}
	b = append(b, s...)
	for ; n > 0; n-- {
		b = append(b, ' ')
	}
	return b
}

// formatNumber is luaL_checknumber: a number or a numeric string.
func formatNumber(L *lua.LState, i int) float64 {
	n, ok := toNumber(L.Get(i))
	if !ok {
		L.TypeError(i, lua.LTNumber)
	}
	return n
}

// cLong is C's (long)n on x86-64: out of range and NaN give the minimum.
func cLong(n float64) int64 {
	if n != n || n >= 1<<63 || n < -(1<<63) {
		return math.MinInt64
	}
	return int64(n)
}

// appendQuoted is %q: the string in double quotes, with '"', '\\' and a
// newline escaped by a backslash, '\r' as \r and a zero byte as \000.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '\n':
			b = append(b, '\\', c)
		case '\r':
			b = append(b, `\r`...)
		case 0:
			b = append(b, `\000`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
