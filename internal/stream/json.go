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
type JSONObject struct {
	buf   []byte
	empty bool
}

// OpenObject starts an object at the end of dst.
func OpenObject(dst []byte) JSONObject { return JSONObject{buf: append(dst, '{'), empty: true} }

func (o *JSONObject) key(k string) {
	if !o.empty {
		o.buf = append(o.buf, ',')
	}
	o.empty = false
	o.buf = append(o.buf, '"')
	o.buf = append(o.buf, k...) // keys are constants needing no escape
	o.buf = append(o.buf, '"', ':')
}

// String adds k: v.
func (o *JSONObject) String(k, v string) {
	o.key(k)
	o.buf = AppendString(o.buf, v)
}

// StringOmitEmpty adds k: v unless v is empty (",omitempty").
func (o *JSONObject) StringOmitEmpty(k, v string) {
	if v != "" {
		o.String(k, v)
	}
}

// Uint adds k: v.
func (o *JSONObject) Uint(k string, v uint64) {
	o.key(k)
	o.buf = strconv.AppendUint(o.buf, v, 10)
}

// Int adds k: v.
func (o *JSONObject) Int(k string, v int64) {
	o.key(k)
	o.buf = strconv.AppendInt(o.buf, v, 10)
}

// Raw adds k: v, v being valid JSON.
func (o *JSONObject) Raw(k string, v []byte) {
	o.key(k)
	o.buf = append(o.buf, v...)
}

// Value adds k: v's JSON.
func (o *JSONObject) Value(k string, v JSONAppender) {
	o.key(k)
	o.buf = v.AppendJSON(o.buf)
}

// Close ends the object and returns the bytes.
func (o *JSONObject) Close() []byte { return append(o.buf, '}') }
