package command

import (
	"math"
	"strconv"
	"testing"
)

// parseFloatCases are scores ParseFloat must read exactly as strconv
// does (bit for bit: -0 included), around the integer fast path's edges.
var parseFloatCases = []string{
	"", "0", "-0", "+0", "00", "-00", "1", "-1", "+1", "007", "-007", "-", "+", "--1", "1-", ".5", "1.", "1.5",
	"-1.5", "1e3", "1E3", "0x10", " 1", "1 ", "1a", "inf", "-inf", "+inf", "Inf", "nan", "NaN",
	"123456789012345", "-123456789012345", "999999999999999", "-999999999999999",
	"1234567890123456", "-1234567890123456", "9007199254740993", "99999999999999999999",
	"1e400", "-1e400", "4.9e-324", "１", "1\x00", "\xff",
}

func TestParseFloatAsStrconv(t *testing.T) {
	for _, s := range parseFloatCases {
		f, ok := ParseFloat([]byte(s))
		var want float64
		var wok bool
		if s != "" {
			want, wok = parseFloatStrconv([]byte(s))
		}
		if ok != wok || math.Float64bits(f) != math.Float64bits(want) {
			t.Errorf("ParseFloat(%q) = %v, %v; strconv path: %v, %v", s, f, ok, want, wok)
		}
	}
	for n := int64(-2000); n <= 2000; n += 7 {
		s := strconv.FormatInt(n*1000003, 10)
		f, ok := ParseFloat([]byte(s))
		if !ok || f != float64(n*1000003) {
			t.Errorf("ParseFloat(%q) = %v, %v", s, f, ok)
		}
	}
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range parseFloatCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		got, ok := ParseFloat([]byte(s))
		want, wok := parseFloatStrconv([]byte(s))
		if ok != wok || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("ParseFloat(%q) = %v, %v; strconv path: %v, %v", s, got, ok, want, wok)
		}
	})
}
