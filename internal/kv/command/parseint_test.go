package command

import (
	"strconv"
	"testing"
)

// parseIntCases are integers and near-integers ParseInt must read as
// strconv.ParseInt in base 10 does.
var parseIntCases = []string{
	"", "0", "1", "-1", "+1", "+", "-", "--1", "+-1", "007", "-0", "+0", "1_000", " 1", "1 ", "1a", "a1", "0x10",
	"12345678", "999999999999999999", "-999999999999999999", "1000000000000000000", "9223372036854775807",
	"-9223372036854775808", "9223372036854775808", "-9223372036854775809", "99999999999999999999",
	"123456789012345678901", "１", "1\x00", "\xff",
}

func TestParseIntAsStrconv(t *testing.T) {
	for _, s := range parseIntCases {
		n, ok := ParseInt([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if len(s) > 20 { // refused before parsing
			err = strconv.ErrRange
		}
		if ok != (err == nil) || (ok && n != want) {
			t.Errorf("ParseInt(%q) = %d, %v; strconv: %d, %v", s, n, ok, want, err)
		}
	}
}

func FuzzParseInt(f *testing.F) {
	for _, s := range parseIntCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseInt([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if len(s) > 20 {
			err = strconv.ErrRange
		}
		if ok != (err == nil) || (ok && n != want) {
			t.Errorf("ParseInt(%q) = %d, %v; strconv: %d, %v", s, n, ok, want, err)
		}
	})
}
