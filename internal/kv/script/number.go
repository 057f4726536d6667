package script

import (
	"errors"
	"math"
	"strconv"
)

// Numbers as Lua 5.1 (and so redis-server 7.0) prints and reads them.
// gopher-lua prints with Go's shortest form (0.30000000000000004,
// 1000000000000000, +Inf) and reads with Go's parsers (no "-0x10", no
// "1e500", "0b11" accepted); Lua 5.1 prints with LUA_NUMBER_FMT "%.14g"
// and reads with C's strtod, as glibc spells and parses them.

// luaNumber is Lua 5.1's number to string ("%.14g"): tostring, "..",
// table.concat, the string functions, string.format's %s.
func luaNumber(f float64) string {
	if f == math.Trunc(f) && f > -1e14 && f < 1e14 {
		if f == 0 && math.Signbit(f) {
			return "-0"
		}
		return strconv.FormatInt(int64(f), 10)
	}
	return formatC(f, 14)
}

// appendLuaNumber appends luaNumber(f) to b.
func appendLuaNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && f > -1e14 && f < 1e14 && (f != 0 || !math.Signbit(f)) {
		return strconv.AppendInt(b, int64(f), 10)
	}
	return append(b, luaNumber(f)...)
}

// formatC is C's "%.<prec>g" as glibc prints it: "inf", "-inf", "nan"
// and "-nan" (a NaN with its sign bit set, as 0/0 makes on x86-64),
// exponents of two digits at least. Go's 'g' with a precision is C's
// rule (exponent form when the exponent is below -4 or at least the
// precision, trailing zeros dropped).
func formatC(f float64, prec int) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		if math.Signbit(f) {
			return "-nan"
		}
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', prec, 64)
}

// argNumber is how redis-server 7.0 turns a number argument of
// redis.call into a string: "%.17g" (it reads back the same double).
func argNumber(f float64) []byte {
	if f == math.Trunc(f) && f > -1e17 && f < 1e17 && (f != 0 || !math.Signbit(f)) {
		return strconv.AppendInt(nil, int64(f), 10)
	}
	return []byte(formatC(f, 17))
}

// isCSpace is C's isspace in the C locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// str2number is Lua 5.1's luaO_str2d over glibc's strtod: leading and
// trailing spaces, a sign, decimal or hexadecimal ("0x1p4") digits,
// "inf", "infinity", "nan", "nan(...)", case-insensitive; an overflow is
// infinity, as strtod answers it (Lua does not look at errno).
func str2number(s string) (float64, bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	f, n := strtod(s[i:])
	if n == 0 {
		return 0, false
	}
	for i += n; i < len(s) && isCSpace(s[i]); i++ {
	}
	if i != len(s) {
		return 0, false
	}
	return f, true
}

func lower(c byte) byte { return c | 0x20 }

func isHexDigit(c byte) bool {
	return isDigit(c) || (lower(c) >= 'a' && lower(c) <= 'f')
}

// hasPrefixFold reports whether s starts with the lower-case word w,
// in any case.
func hasPrefixFold(s, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if lower(s[i]) != w[i] {
			return false
		}
	}
	return true
}

// strtod reads the longest number at the start of s (no leading
// spaces) as glibc's strtod does, returning it and the bytes it took (0:
// none).
func strtod(s string) (float64, int) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	sign := func(f float64) float64 {
		if neg {
			return -f
		}
		return f
	}
	rest := s[i:]
	switch {
	case hasPrefixFold(rest, "infinity"):
		return sign(math.Inf(1)), i + len("infinity")
	case hasPrefixFold(rest, "inf"):
		return sign(math.Inf(1)), i + len("inf")
	case hasPrefixFold(rest, "nan"):
		n := i + len("nan")
		if n < len(s) && s[n] == '(' {
			j := n + 1
			for j < len(s) && (isDigit(s[j]) || lower(s[j]) >= 'a' && lower(s[j]) <= 'z' || s[j] == '_') {
				j++
			}
			if j < len(s) && s[j] == ')' {
				n = j + 1
			}
		}
		nan := math.NaN()
		if neg {
			nan = math.Copysign(nan, -1)
		}
		return nan, n
	}
	if len(rest) >= 3 && rest[0] == '0' && lower(rest[1]) == 'x' && (isHexDigit(rest[2]) || rest[2] == '.' && len(rest) > 3 && isHexDigit(rest[3])) {
		j := 2
		for j < len(rest) && isHexDigit(rest[j]) {
			j++
		}
		if j < len(rest) && rest[j] == '.' {
			j++
			for j < len(rest) && isHexDigit(rest[j]) {
				j++
			}
		}
		mant := rest[:j]
		exp := "p0"
		if k := exponentEnd(rest, j, 'p'); k > j {
			exp = rest[j:k]
			j = k
		}
		f, err := strconv.ParseFloat(mant+exp, 64)
		if err != nil && !isRange(err) {
			return 0, 0
		}
		return sign(f), i + j
	}
	j := 0
	digits := 0
	for j < len(rest) && isDigit(rest[j]) {
		j++
		digits++
	}
	if j < len(rest) && rest[j] == '.' {
		j++
		for j < len(rest) && isDigit(rest[j]) {
			j++
			digits++
		}
	}
	if digits == 0 {
		return 0, 0
	}
	j = exponentEnd(rest, j, 'e')
	f, err := strconv.ParseFloat(rest[:j], 64)
	if err != nil && !isRange(err) {
		return 0, 0
	}
	return sign(f), i + j
}

// exponentEnd is the end of the exponent at s[j:] ('e' or 'p', either
// case, an optional sign, digits), or j when there is none: strtod takes
// a marker without digits as the end of the number.
func exponentEnd(s string, j int, marker byte) int {
	if j >= len(s) || lower(s[j]) != marker {
		return j
	}
	k := j + 1
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		k++
	}
	if k >= len(s) || !isDigit(s[k]) {
		return j
	}
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	return k
}

func isRange(err error) bool { return errors.Is(err, strconv.ErrRange) }

// strtoul is glibc's strtoul(s, &end, base) for Lua 5.1's tonumber with
// a base: spaces, a sign (a minus negates the unsigned value), "0x" for
// base 16, the digits; an overflow is the largest value. It returns the
// value and the bytes taken (0: no digit).
func strtoul(s string, base int) (uint64, int) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base == 16 && i+2 < len(s) && s[i] == '0' && lower(s[i+1]) == 'x' && digitValue(s[i+2]) < 16 {
		i += 2
	}
	var n uint64
	over := false
	start := i
	for ; i < len(s); i++ {
		d := digitValue(s[i])
		if d >= base {
			break
		}
		if n > (math.MaxUint64-uint64(d))/uint64(base) {
			over = true
		}
		n = n*uint64(base) + uint64(d)
	}
	if i == start {
		return 0, 0
	}
	if over {
		return math.MaxUint64, i
	}
	if neg {
		n = -n
	}
	return n, i
}

// digitValue is a digit's value in bases up to 36 (36 for no digit).
func digitValue(c byte) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case lower(c) >= 'a' && lower(c) <= 'z':
		return int(lower(c)-'a') + 10
	}
	return 36
}
