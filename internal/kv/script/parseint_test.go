package script

import (
	"strconv"
	"testing"
)

func TestParseIntAsStrconv(t *testing.T) {
	for _, s := range []string{
		"", "0", "1", "-1", "+1", "+", "-", "--1", "007", "-0", "1_000", " 1", "1 ", "1a", "0x10",
		"999999999999999999", "-999999999999999999", "1000000000000000000", "9223372036854775807",
		"-9223372036854775808", "9223372036854775808", "99999999999999999999", "\xff",
	} {
		n, ok := parseInt([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if ok != (err == nil) || (ok && n != want) {
			t.Errorf("parseInt(%q) = %d, %v; strconv: %d, %v", s, n, ok, want, err)
		}
	}
}
