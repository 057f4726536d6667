package script

import (
	"strings"
	"testing"
)

// TestStringFormat: string.format against redis-server 7.0.15 (each reply
// below is what `EVAL <body> 0` answered there, recorded raw; SHA stands
// for the script's SHA1).
func TestStringFormat(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct{ body, want string }{
		{`return string.format('%d', 'x')`, "-ERR user_script:1: bad argument #2 to 'format' (number expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%d', '12')`, "$2\r\n12\r\n"},
		{`return string.format('%d', ' 0x10 ')`, "$2\r\n16\r\n"},
		{`return string.format('%d', 3.9)`, "$1\r\n3\r\n"},
		{`return string.format('%d', -3.9)`, "$2\r\n-3\r\n"},
		{`return string.format('%5d|%-5d|%05d|%+d|% d', 42, 42, 42, 42, 42)`, "$25\r\n   42|42   |00042|+42| 42\r\n"},
		{`return string.format('%.3d|%8.3d|%.0d|', 7, 7, 0)`, "$14\r\n007|     007||\r\n"},
		{`return string.format('%x|%X|%#x|%#X|%#x|%o|%#o|%#o', 255, 255, 255, 255, 0, 8, 8, 0)`, "$26\r\nff|FF|0xff|0XFF|0|10|010|0\r\n"},
		{`return string.format('%x', -1)`, "$16\r\nffffffffffffffff\r\n"},
		{`return string.format('%u', -1)`, "$20\r\n18446744073709551615\r\n"},
		{`return string.format('%+x|% x', 5, 5)`, "$3\r\n5|5\r\n"},
		{`return string.format('%d', 2^63)`, "$20\r\n-9223372036854775808\r\n"},
		{`return string.format('%d', -2^63)`, "$20\r\n-9223372036854775808\r\n"},
		{`return string.format('%d', 2^53 + 1)`, "$16\r\n9007199254740992\r\n"},
		{`return string.format('%d', 0/0)`, "$20\r\n-9223372036854775808\r\n"},
		{`return string.format('%i', 12)`, "$2\r\n12\r\n"},
		{`return string.format('%c%c%c', 76, 117, 97)`, "$3\r\nLua\r\n"},
		{`return string.format('%5c|%-3c|', 65, 66)`, "$10\r\n    A|B  |\r\n"},
		{`return string.format('a%cb', 0)`, "$2\r\nab\r\n"},
		{`return string.format('%e|%E|%.2e|%10.3e', 12345.678, 0.00012, 1, -5)`, "$45\r\n1.234568e+04|1.200000E-04|1.00e+00|-5.000e+00\r\n"},
		{`return string.format('%f|%.2f|%10.1f|%-10.1f|%+f|%010.2f', 3.14159, 2.005, 1.25, 1.35, 1, -3.5)`, "$56\r\n3.141590|2.00|       1.2|1.4       |+1.000000|-000003.50\r\n"},
		{`return string.format('%g|%g|%g|%g|%.3g|%#g|%G|%.0g', 100000, 1000000, 1e-5, 0.0001, 3.14159, 1.5, 1e-10, 123)`, "$50\r\n100000|1e+06|1e-05|0.0001|3.14|1.50000|1E-10|1e+02\r\n"},
		{`return string.format('%f|%f|%f|%e|%g', 1/0, -1/0, 0/0, 1/0, -(0/0))`, "$21\r\ninf|-inf|-nan|inf|nan\r\n"},
		{`return string.format('%5.1f|%-8g|%G', 1/0, -1/0, 1/0)`, "$18\r\n  inf|-inf    |INF\r\n"},
		{`return string.format('%s|%10s|%-10s|%.2s|%5.1s|', 'abc', 'abc', 'abc', 'abc', 'abc')`, "$35\r\nabc|       abc|abc       |ab|    a|\r\n"},
		{`return string.format('%s', 1/3)`, "$16\r\n0.33333333333333\r\n"},
		{`return string.format('%s %s', 12, 1e100)`, "$9\r\n12 1e+100\r\n"},
		{`return string.format('%s', {})`, "-ERR user_script:1: bad argument #2 to 'format' (string expected, got table) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%s', nil)`, "-ERR user_script:1: bad argument #2 to 'format' (string expected, got nil) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%s', true)`, "-ERR user_script:1: bad argument #2 to 'format' (string expected, got boolean) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%s', 'a\0b')`, "$1\r\na\r\n"},
		{`return string.format('%.5s', 'a\0b')`, "$1\r\na\r\n"},
		{`return #string.format('%s', string.rep('a\0', 60))`, ":120\r\n"},
		{`return string.format('%q', 'a"b\\c\nd\re\0f')`, "$20\r\n\"a\\\"b\\\\c\\\nd\\re\\000f\"\r\n"},
		{`return string.format('%q', 12)`, "$4\r\n\"12\"\r\n"},
		{`return string.format('%d')`, "-ERR user_script:1: bad argument #2 to 'format' (no value) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%d %d', 1)`, "-ERR user_script:1: bad argument #3 to 'format' (no value) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%y', 1)`, "-ERR user_script:1: invalid option '%y' to 'format' script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%', 1)`, "-ERR user_script:1: invalid option '%' to 'format' script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%-+ #0-d', 1)`, "-ERR user_script:1: invalid format (repeated flags) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%123d', 1)`, "-ERR user_script:1: invalid format (width or precision too long) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%1.123f', 1)`, "-ERR user_script:1: invalid format (width or precision too long) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%99.2f|', 1)`, "$100\r\n                                                                                               1.00|\r\n"},
		{`return string.format('%%|%5%|', 1)`, "-ERR user_script:1: invalid option '%%' to 'format' script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%ld', 1)`, "-ERR user_script:1: invalid option '%l' to 'format' script: SHA, on @user_script:1.\r\n"},
		{`return string.format()`, "-ERR user_script:1: bad argument #1 to 'format' (string expected, got no value) script: SHA, on @user_script:1.\r\n"},
		{`return string.format(12)`, "$2\r\n12\r\n"},
		{`return string.format('%d', true)`, "-ERR user_script:1: bad argument #2 to 'format' (number expected, got boolean) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%d', {})`, "-ERR user_script:1: bad argument #2 to 'format' (number expected, got table) script: SHA, on @user_script:1.\r\n"},
		{`return string.format('%.14g', 0.1)`, "$3\r\n0.1\r\n"},
		{`return string.format('%.20f', 0.1)`, "$22\r\n0.10000000000000000555\r\n"},
		{`return string.format('%5.3s|', 'abcdef')`, "$6\r\n  abc|\r\n"},
		{`return string.format('%s', 'ü')`, "$2\r\n\xc3\xbc\r\n"},
		{`return string.format('%3s|', 'ü')`, "$4\r\n \xc3\xbc|\r\n"},
		{`return string.format('%x', 2^64)`, "$1\r\n0\r\n"},
		{`return string.format('%x', 1.5e19)`, "$16\r\nd02ab486cedc0000\r\n"},
		{`return string.format('%c', 256+65)`, "$1\r\nA\r\n"},
		{`return string.format('%o', -8)`, "$22\r\n1777777777777777777770\r\n"},
		{`return string.format('%#.3x|%#5o|', 1, 1)`, "$12\r\n0x001|   01|\r\n"},
		{`return string.format('%-#10x|', 255)`, "$11\r\n0xff      |\r\n"},
		{`return string.format('%e', 0)`, "$12\r\n0.000000e+00\r\n"},
		{`return string.format('%.0e|%#.0e|%.0f|%#.0f', 12345, 12345, 2.5, 2.5)`, "$17\r\n1e+04|1.e+04|2|2.\r\n"},
		{`return string.format('%g|%g', 1e20, 123456789)`, "$17\r\n1e+20|1.23457e+08\r\n"},
		{`return string.format('%a', 1)`, "-ERR user_script:1: invalid option '%a' to 'format' script: SHA, on @user_script:1.\r\n"},
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got %q\nwant %q", tc.body, got, want)
		}
	}
}
