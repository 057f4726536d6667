package resp

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in   string
		args []string
		n    int
		err  string
	}{
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []string{"GET", "k"}, 20, ""},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nextra", []string{"GET", "k"}, 20, ""},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk", nil, 0, ""},
		{"*2\r\n$3\r\nGE", nil, 0, ""},
		{"*", nil, 0, ""},
		{"*0\r\n", nil, 4, ""},
		{"*-1\r\n", nil, 5, ""},
		{"*-10\r\n", nil, 6, ""}, // any negative count is empty, as Redis
		{"*1\r\n$-10\r\n", nil, 0, "Protocol error: invalid bulk length"},
		{"*1\r\n$0\r\n\r\n", []string{""}, 10, ""},
		{"PING\r\n", []string{"PING"}, 6, ""},
		{"SET  k   v\n", []string{"SET", "k", "v"}, 11, ""},
		{"SET k \"a\\nb\"\r\n", []string{"SET", "k", "a\nb"}, 14, ""},
		{"SET k 'it''s'\r\n", nil, 0, "Protocol error: unbalanced quotes in request"},
		{"SET k 'a b'\r\n", []string{"SET", "k", "a b"}, 13, ""},
		{"SET k \"a\r\n", nil, 0, "Protocol error: unbalanced quotes in request"},
		{"\r\n", nil, 2, ""},
		{"*1\r\n$3\r\nabcd\r\n", nil, 0, "Protocol error: invalid bulk terminator"},
		{"*1\r\n:3\r\n", nil, 0, "Protocol error: expected '$', got ':'"},
		{"*x\r\n", nil, 0, "Protocol error: invalid multibulk length"},
		{"*1\r\n$-1\r\n", nil, 0, "Protocol error: invalid bulk length"},
		{"*1\r\n$999999999999\r\n", nil, 0, "Protocol error: invalid bulk length"},
		{"*1\n", nil, 0, "Protocol error: invalid multibulk length"},
	}
	for _, tt := range tests {
		args, n, err := ParseCommand([]byte(tt.in), nil)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Errorf("%q: error is not a *ProtocolError", tt.in)
			}
			continue
		}
		if err != nil || n != tt.n || len(args) != len(tt.args) {
			t.Errorf("%q: got %q n=%d err=%v, want %q n=%d", tt.in, args, n, err, tt.args, tt.n)
			continue
		}
		for i := range args {
			if string(args[i]) != tt.args[i] {
				t.Errorf("%q: arg %d = %q, want %q", tt.in, i, args[i], tt.args[i])
			}
		}
	}
}

func TestWriter(t *testing.T) {
	var w Writer
	w.Proto = 2
	w.Null()
	w.Map(1)
	w.Double(1.5)
	w.Bool(true)
	w.Error("ERR bad\r\nline")
	want := "$-1\r\n*2\r\n$3\r\n1.5\r\n:1\r\n-ERR bad  line\r\n"
	if string(w.B) != want {
		t.Fatalf("RESP2: %q, want %q", w.B, want)
	}
	w = Writer{Proto: 3}
	w.Null()
	w.Map(1)
	w.Double(1.5)
	w.Bool(true)
	w.Set(2)
	w.Verbatim("hi")
	want = "_\r\n%1\r\n,1.5\r\n#t\r\n~2\r\n=6\r\ntxt:hi\r\n"
	if string(w.B) != want {
		t.Fatalf("RESP3: %q, want %q", w.B, want)
	}
	// as Redis 7.0's "%.17g" (checked with C's printf)
	for f, s := range map[float64]string{3: "3", 0.1: "0.10000000000000001", 1e21: "1e+21", -2.5: "-2.5",
		1234567: "1234567", 3479099956230698: "3479099956230698", 1.2345678901234568e+17: "1.2345678901234568e+17",
		0.0001: "0.0001", 1e-7: "9.9999999999999995e-08", 1e-5: "1.0000000000000001e-05", 123.456: "123.456",
		-1e300: "-1.0000000000000001e+300", 1e16: "10000000000000000", 1e17: "1e+17", 0.5: "0.5",
		math.Inf(1): "inf", math.Inf(-1): "-inf", 0: "0"} {
		if got := string(AppendFloat(nil, f)); got != s {
			t.Errorf("AppendFloat(%v) = %s, want %s", f, got, s)
		}
	}
}

// FuzzParseCommand checks that the parser never panics, never reads past
// its input, and that what it parses from an array survives re-encoding.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n",
		"PING\r\n",
		"SET k \"a\\x41\\n\" 'b c'\r\n",
		"*1\r\n$-1\r\n",
		"*-1\r\n",
		"*0\r\n",
		"*1\r\n$3\r\nab",
		"*99999999\r\n",
		"\"unterminated\r\n",
		"*1\r\n$0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...)
		args, n, err := ParseCommand(in, nil)
		if err != nil {
			return
		}
		if n < 0 || n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		if n == 0 || len(data) == 0 || data[0] != '*' {
			return
		}
		enc := AppendCommand(nil, args...)
		again, m, err := ParseCommand(enc, nil)
		if err != nil || m != len(enc) || len(again) != len(args) {
			t.Fatalf("re-encoded %q: %q %d %v", enc, again, m, err)
		}
		for i := range args {
			if !bytes.Equal(args[i], again[i]) {
				t.Fatalf("arg %d changed: %q vs %q", i, args[i], again[i])
			}
		}
	})
}

// shortLen, the parser's fast path for lengths of one or two digits,
// agrees with parseLen wherever it answers, and answers for every such
// length: every string of up to 5 bytes over the bytes that matter.
func TestShortLen(t *testing.T) {
	alphabet := []byte("019\r\n-x")
	var gen func(prefix []byte, n int)
	answered := 0
	gen = func(b []byte, n int) {
		v, next, ok := shortLen(b, 0)
		pv, pnext, err := parseLen(b, 0, 1<<40, "what", "over")
		if ok {
			answered++
			if err != nil || pv != v || pnext != next {
				t.Errorf("%q: shortLen %d %d, parseLen %d %d %v", b, v, next, pv, pnext, err)
			}
		} else if err == nil && pnext > 0 && pnext <= 4 && pv >= 0 && b[0] != '-' {
			t.Errorf("%q: shortLen did not answer where parseLen read %d", b, pv)
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(b[:len(b):len(b)], c), n-1)
		}
	}
	gen(nil, 5)
	if answered == 0 {
		t.Fatal("shortLen never answered")
	}
	for _, tc := range []struct {
		in   string
		v    int64
		next int
	}{{"7\r\n", 7, 3}, {"42\r\nx", 42, 4}, {"99\r\n", 99, 4}} {
		if v, next, ok := shortLen([]byte(tc.in), 0); !ok || v != tc.v || next != tc.next {
			t.Errorf("%q: %d %d %v, want %d %d", tc.in, v, next, ok, tc.v, tc.next)
		}
	}
}

// Limits under the fast path: counts and lengths of one or two digits are
// still checked against an unauthenticated client's caps.
func TestParseLimitsShort(t *testing.T) {
	unauth := Limits{Unauthenticated: true}
	tests := []struct {
		in  string
		lim Limits
		err string
	}{
		{"*11\r\n", unauth, "Protocol error: unauthenticated multibulk length"},
		{"*10\r\n", unauth, ""},
		{"*1\r\n$20\r\n", Limits{MaxBulk: 10}, "Protocol error: invalid bulk length"},
		{"*1\r\n$10\r\n", Limits{MaxBulk: 10}, ""},
	}
	for _, tt := range tests {
		_, _, err := ParseCommandLimits([]byte(tt.in), nil, tt.lim)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("%q %+v: err %q, want %q", tt.in, tt.lim, got, tt.err)
		}
	}
}
