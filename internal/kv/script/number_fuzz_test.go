package script

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// refFormatC is C's "%.<prec>g" built from its definition over Go's
// 'e' digits: the exponent X of the number rounded to prec digits picks
// "%e" (X < -4 or X >= prec) or "%f" with prec-1-X decimals, and the
// trailing zeros of the fraction go.
func refFormatC(f float64, prec int) string {
	e := strconv.FormatFloat(f, 'e', prec-1, 64)
	i := strings.LastIndexByte(e, 'e')
	x, _ := strconv.Atoi(e[i+1:])
	var s string
	if x < -4 || x >= prec {
		m := e[:i]
		if strings.Contains(m, ".") {
			m = strings.TrimRight(strings.TrimRight(m, "0"), ".")
		}
		exp := e[i+1:]
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		for len(digits) < 2 {
			digits = "0" + digits
		}
		s = m + "e" + string(sign) + digits
	} else {
		s = strconv.FormatFloat(f, 'f', prec-1-x, 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
	}
	return s
}

// FuzzNumberFormat checks the number texts against references: %.14g
// and %.17g against refFormatC, str2number against strconv.ParseFloat on
// what both accept and on its own output (the text of a number reads
// back as the number rounded to 14 digits), strtoul against
// strconv.ParseUint; none may panic.
func FuzzNumberFormat(f *testing.F) {
	for _, s := range []string{"0.1", "1e15", "-0", "0x10", " 10 ", "1e", "", "inf", "-nan", "0x1p4", "1e500", "5e-324", "9007199254740993", "  -0X1F  ", "1.5e+300", "nan(abc)", "0x", "1 2"} {
		f.Add(s, 0.1+0.2, uint8(16))
	}
	f.Fuzz(func(t *testing.T, s string, x float64, base uint8) {
		if !math.IsInf(x, 0) && !math.IsNaN(x) {
			if got, want := luaNumber(x), refFormatC(x, 14); got != want && (x != 0 || got != "-0") {
				t.Fatalf("luaNumber(%v) = %q, want %q", x, got, want)
			}
			if got, want := string(argNumber(x)), refFormatC(x, 17); got != want && (x != 0 || got != "-0") {
				t.Fatalf("argNumber(%v) = %q, want %q", x, got, want)
			}
			back, ok := str2number(luaNumber(x))
			want, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'e', 13, 64), 64)
			if !ok || back != want {
				t.Fatalf("str2number(luaNumber(%v)) = %v, %v; want %v", x, back, ok, want)
			}
			if b, ok := str2number(string(argNumber(x))); !ok || b != x {
				t.Fatalf("%%.17g of %v reads back as %v, %v", x, b, ok)
			}
		}
		n, ok := str2number(s)
		if p, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && !strings.ContainsAny(s, "_xXpP") && strings.TrimSpace(s) == strings.Trim(s, " \t\n\r\v\f") {
			if !ok || (n != p && !(math.IsNaN(n) && math.IsNaN(p))) {
				t.Fatalf("str2number(%q) = %v, %v; ParseFloat %v", s, n, ok, p)
			}
		}
		b := int(base%35) + 2
		u, used := strtoul(s, b)
		if used < 0 || used > len(s) {
			t.Fatalf("strtoul(%q, %d) took %d bytes", s, b, used)
		}
		if w, err := strconv.ParseUint(s, b, 64); err == nil && !strings.Contains(s, "_") && (b != 16 || !strings.HasPrefix(strings.ToLower(s), "0x")) && s[0] != '+' {
			if used != len(s) || u != w {
				t.Fatalf("strtoul(%q, %d) = %d (%d bytes); ParseUint %d", s, b, u, used, w)
			}
		}
	})
}
