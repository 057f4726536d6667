package stream

import (
	"strconv"
	"unicode/utf8"
)

// JSONAppender is a payload that writes its own JSON. The broker encodes
// every event on its one goroutine, at the rate entries commit (tens of
// thousands of events a second under load), so the payloads of frequent
// events implement it rather than go through encoding/json's reflection.
type JSONAppender interface {
	// AppendJSON appends the payload's JSON to dst: one valid JSON value.
	AppendJSON(dst []byte) []byte
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, byte for byte as encoding/json
// writes it: HTML-sensitive characters and U+2028/U+2029 escaped, invalid
// UTF-8 replaced by U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: IDs, names
		// and statuses are plain ASCII, and this is most of encoding.
		for i+8 <= len(s) && plainWord(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainWord reports whether the eight bytes of x are all plain (printable
// ASCII other than " \\ < > &). Each test below flags a word holding such
// a byte exactly, not where it is: a borrow crosses into the next byte
// only from a byte the same test flags.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// Control characters (below 0x20) and non-ASCII (high bit set).
	bad := (x - 0x20*ones) | x
	// '"' (0x22) and '&' (0x26): equal to 0x26 once bit 2 is set.
	y := (x | 0x04*ones) ^ 0x26*ones
	bad |= (y - ones) &^ y
	// '<' (0x3c) and '>' (0x3e): equal to 0x3e once bit 1 is set.
	y = (x | 0x02*ones) ^ 0x3e*ones
	bad |= (y - ones) &^ y
	// '\\' (0x5c).
	y = x ^ 0x5c*ones
	bad |= (y - ones) &^ y
	return bad&highs == 0
}

// plain marks the bytes AppendString copies as they are: printable ASCII
// other than the quote, the backslash and <, >, &.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// JSONObject builds a JSON object field by field into a byte slice. A
// payload's AppendJSON uses it to write its fields in order.
//
// Its methods are one call each, small enough to be inlined: a JSONObject
// kept in a local variable then lives on the stack, and the writes of its
// slice header are not pointer writes to the heap. Not inlined, every
// field cost a write barrier while the collector was marking, which under
// load (the collector marks for a good part of the time) was a third of
// the encoding's CPU.
type JSONObject struct {
	buf []byte
}

// OpenObject starts an object at the end of dst.
func OpenObject(dst []byte) JSONObject { return JSONObject{buf: append(dst, '{')} }

// AppendKey appends "k": to an object being written, after a comma
// unless the object is empty (dst ends with its '{': no JSON value ends
// with one). Keys are constants needing no escape.
func AppendKey(dst []byte, k string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' {
		dst = append(dst, ',', '"')
	} else {
		dst = append(dst, '"')
	}
	dst = append(dst, k...)
	return append(dst, '"', ':')
}

// AppendStringField appends "k":"v" (AppendKey, AppendString).
func AppendStringField(dst []byte, k, v string) []byte {
	return AppendString(AppendKey(dst, k), v)
}

// AppendUintField appends "k":v.
func AppendUintField(dst []byte, k string, v uint64) []byte {
	return strconv.AppendUint(AppendKey(dst, k), v, 10)
}

// AppendIntField appends "k":v.
func AppendIntField(dst []byte, k string, v int64) []byte {
	return strconv.AppendInt(AppendKey(dst, k), v, 10)
}

// String adds k: v.
func (o *JSONObject) String(k, v string) { o.buf = AppendStringField(o.buf, k, v) }

// StringOmitEmpty adds k: v unless v is empty (",omitempty").
func (o *JSONObject) StringOmitEmpty(k, v string) {
	if v != "" {
		o.buf = AppendStringField(o.buf, k, v)
	}
}

// Uint adds k: v.
func (o *JSONObject) Uint(k string, v uint64) { o.buf = AppendUintField(o.buf, k, v) }

// Int adds k: v.
func (o *JSONObject) Int(k string, v int64) { o.buf = AppendIntField(o.buf, k, v) }

// Raw adds k: v, v being valid JSON.
func (o *JSONObject) Raw(k string, v []byte) { o.buf = append(AppendKey(o.buf, k), v...) }

// Value adds k: v's JSON.
func (o *JSONObject) Value(k string, v JSONAppender) { o.buf = v.AppendJSON(AppendKey(o.buf, k)) }

// Close ends the object and returns the bytes.
func (o *JSONObject) Close() []byte { return append(o.buf, '}') }
