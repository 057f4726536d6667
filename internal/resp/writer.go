package resp

import (
	"math"
	"strconv"
)

// Writer appends replies to a buffer in the protocol version the client
// negotiated (2 or 3). The zero value writes RESP2. A connection flushes B to
// the socket once per pipeline and then resets it with B = B[:0].
type Writer struct {
	B     []byte
	Proto int // 2 or 3
}

// RESP3 reports whether the client negotiated RESP3 with HELLO 3.
func (w *Writer) RESP3() bool { return w.Proto == 3 }

// Simple appends a simple string (+OK).
func (w *Writer) Simple(s string) {
	w.B = append(w.B, '+')
	w.B = append(w.B, s...)
	w.B = append(w.B, '\r', '\n')
}

// OK appends +OK.
func (w *Writer) OK() { w.B = append(w.B, "+OK\r\n"...) }

// Error appends an error; msg starts with its code ("ERR ...", "WRONGTYPE ...").
func (w *Writer) Error(msg string) {
	w.B = append(w.B, '-')
	for i := 0; i < len(msg); i++ { // an error is one line
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.B = append(w.B, c)
	}
	w.B = append(w.B, '\r', '\n')
}

// Int appends an integer.
func (w *Writer) Int(n int64) {
	w.B = append(w.B, ':')
	w.B = strconv.AppendInt(w.B, n, 10)
	w.B = append(w.B, '\r', '\n')
}

// Bulk appends a bulk string.
func (w *Writer) Bulk(b []byte) {
	w.B = append(w.B, '$')
	w.B = strconv.AppendInt(w.B, int64(len(b)), 10)
	w.B = append(w.B, '\r', '\n')
	w.B = append(w.B, b...)
	w.B = append(w.B, '\r', '\n')
}

// BulkString appends a bulk string.
func (w *Writer) BulkString(s string) {
	w.B = append(w.B, '$')
	w.B = strconv.AppendInt(w.B, int64(len(s)), 10)
	w.B = append(w.B, '\r', '\n')
	w.B = append(w.B, s...)
	w.B = append(w.B, '\r', '\n')
}

// BulkInt appends an integer as a bulk string.
func (w *Writer) BulkInt(n int64) {
	var tmp [24]byte
	w.Bulk(strconv.AppendInt(tmp[:0], n, 10))
}

// Null appends the null reply: $-1 in RESP2, _ in RESP3.
func (w *Writer) Null() {
	if w.Proto == 3 {
		w.B = append(w.B, "_\r\n"...)
		return
	}
	w.B = append(w.B, "$-1\r\n"...)
}

// NullArray appends a null array: *-1 in RESP2, _ in RESP3.
func (w *Writer) NullArray() {
	if w.Proto == 3 {
		w.B = append(w.B, "_\r\n"...)
		return
	}
	w.B = append(w.B, "*-1\r\n"...)
}

// Array appends the header of an array of n elements.
func (w *Writer) Array(n int) { w.header('*', n) }

// Map appends the header of a map of n pairs: %n in RESP3, an array of 2n
// elements in RESP2.
func (w *Writer) Map(n int) {
	if w.Proto == 3 {
		w.header('%', n)
		return
	}
	w.header('*', 2*n)
}

// Set appends the header of a set of n elements: ~n in RESP3, an array in RESP2.
func (w *Writer) Set(n int) {
	if w.Proto == 3 {
		w.header('~', n)
		return
	}
	w.header('*', n)
}

// Double appends a floating point number: ,1.5 in RESP3, a bulk string in
// RESP2 (formatted as Redis formats scores).
func (w *Writer) Double(f float64) {
	if w.Proto == 3 {
		w.B = append(w.B, ',')
		w.B = AppendFloat(w.B, f)
		w.B = append(w.B, '\r', '\n')
		return
	}
	var tmp [32]byte
	w.Bulk(AppendFloat(tmp[:0], f))
}

// Bool appends a boolean: #t/#f in RESP3, 1/0 in RESP2.
func (w *Writer) Bool(b bool) {
	if w.Proto == 3 {
		if b {
			w.B = append(w.B, "#t\r\n"...)
		} else {
			w.B = append(w.B, "#f\r\n"...)
		}
		return
	}
	if b {
		w.Int(1)
	} else {
		w.Int(0)
	}
}

// Verbatim appends a verbatim text string (=len txt:...) in RESP3, a bulk
// string in RESP2.
func (w *Writer) Verbatim(s string) {
	if w.Proto != 3 {
		w.BulkString(s)
		return
	}
	w.B = append(w.B, '=')
	w.B = strconv.AppendInt(w.B, int64(len(s)+4), 10)
	w.B = append(w.B, "\r\ntxt:"...)
	w.B = append(w.B, s...)
	w.B = append(w.B, '\r', '\n')
}

// Raw appends bytes already encoded.
func (w *Writer) Raw(b []byte) { w.B = append(w.B, b...) }

func (w *Writer) header(c byte, n int) {
	w.B = append(w.B, c)
	w.B = strconv.AppendInt(w.B, int64(n), 10)
	w.B = append(w.B, '\r', '\n')
}

// AppendFloat formats f the way Redis replies with scores and float
// as Redis 7.2 does: the shortest representation that reads back to f,
// laid out as its fpconv_dtoa does (a plain integer up to 7 digits past
// the shortest digits, so 1234567 and a geohash score print whole; plain
// decimals down to 1e-7; an exponent without leading zeros otherwise),
// "inf" and "-inf" for infinities.
func AppendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	case f == 0:
		if math.Signbit(f) {
			return append(b, "-0"...)
		}
		return append(b, '0')
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64) // [-]d[.ddd]e±XX
	neg := e[0] == '-'
	if neg {
		e = e[1:]
		b = append(b, '-')
	}
	var digits [24]byte
	nd := 0
	i := 0
	for ; e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[nd] = e[i]
			nd++
		}
	}
	exp10 := 0
	for _, ch := range e[i+2:] {
		exp10 = exp10*10 + int(ch-'0')
	}
	if e[i+1] == '-' {
		exp10 = -exp10
	}
	k := exp10 - (nd - 1) // f = digits * 10^k
	absExp := exp10
	if absExp < 0 {
		absExp = -absExp
	}
	switch {
	case k >= 0 && absExp < nd+7: // plain integer
		b = append(b, digits[:nd]...)
		for ; k > 0; k-- {
			b = append(b, '0')
		}
		return b
	case k < 0 && (k > -7 || absExp < 4): // plain decimal
		offset := nd + k
		if offset <= 0 {
			b = append(b, '0', '.')
			for ; offset < 0; offset++ {
				b = append(b, '0')
			}
			return append(b, digits[:nd]...)
		}
		b = append(b, digits[:offset]...)
		b = append(b, '.')
		return append(b, digits[offset:nd]...)
	}
	b = append(b, digits[0])
	if nd > 1 {
		b = append(b, '.')
		b = append(b, digits[1:nd]...)
	}
	b = append(b, 'e')
	if exp10 < 0 {
		b = append(b, '-')
	} else {
		b = append(b, '+')
	}
	return strconv.AppendInt(b, int64(absExp), 10)
}

// AppendCommand appends args as a RESP array of bulk strings, the format of
// requests and of gantry's append-only log.
func AppendCommand(b []byte, args ...[]byte) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
