package rdbcodec

import (
	"encoding/binary"
	"math"
	"strconv"
)

// Test-only encoders of Redis's formats, to build payloads of the
// encodings Redis 7.0 no longer writes (ziplist, zipmap, old lists, sets,
// hashes, sorted sets and streams) and malformed ones.

func rdbLen(n uint64) []byte {
	switch {
	case n < 1<<6:
		return []byte{byte(n)}
	case n < 1<<14:
		return []byte{0x40 | byte(n>>8), byte(n)}
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32([]byte{0x80}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{0x81}, n)
}

func rdbStr(s string) []byte { return append(rdbLen(uint64(len(s))), s...) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// seal makes a payload of a type byte and a value.
func seal(t byte, value []byte, version uint16) []byte {
	b := append([]byte{t}, value...)
	b = binary.LittleEndian.AppendUint16(b, version)
	return binary.LittleEndian.AppendUint64(b, CRC64(0, b))
}

func asInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == s
}

// lpEntry encodes one listpack element (encoding, data, back length).
func lpEntry(s string) []byte {
	var e []byte
	if v, ok := asInt(s); ok {
		switch {
		case v >= 0 && v <= 127:
			e = []byte{byte(v)}
		case v >= -4096 && v <= 4095:
			u := uint64(v) & 0x1fff
			e = []byte{0xC0 | byte(u>>8), byte(u)}
		case v >= math.MinInt16 && v <= math.MaxInt16:
			e = binary.LittleEndian.AppendUint16([]byte{0xF1}, uint16(v))
		case v >= -1<<23 && v < 1<<23:
			e = []byte{0xF2, byte(v), byte(v >> 8), byte(v >> 16)}
		case v >= math.MinInt32 && v <= math.MaxInt32:
			e = binary.LittleEndian.AppendUint32([]byte{0xF3}, uint32(v))
		default:
			e = binary.LittleEndian.AppendUint64([]byte{0xF4}, uint64(v))
		}
	} else {
		switch n := len(s); {
		case n < 64:
			e = []byte{0x80 | byte(n)}
		case n < 4096:
			e = []byte{0xE0 | byte(n>>8), byte(n)}
		default:
			e = binary.LittleEndian.AppendUint32([]byte{0xF0}, uint32(n))
		}
		e = append(e, s...)
	}
	l := uint64(len(e))
	k := backlenSize(l)
	for i := 0; i < k; i++ {
		c := byte(l>>(7*uint(k-1-i))) & 127
		if i > 0 {
			c |= 128
		}
		e = append(e, c)
	}
	return e
}

func listpack(el ...string) []byte {
	var body []byte
	for _, s := range el {
		body = append(body, lpEntry(s)...)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(6+len(body)+1))
	b = binary.LittleEndian.AppendUint16(b, uint16(min(len(el), unknownCount)))
	return append(append(b, body...), 0xFF)
}

// ziplist encodes elements as a ziplist, integers in every width.
func ziplist(el ...string) []byte {
	var body []byte
	prev, tail := 0, 10
	for _, s := range el {
		var e []byte
		if prev < 254 {
			e = []byte{byte(prev)}
		} else {
			e = binary.LittleEndian.AppendUint32([]byte{254}, uint32(prev))
		}
		if v, ok := asInt(s); ok {
			switch {
			case v >= 0 && v <= 12:
				e = append(e, 0xF1+byte(v))
			case v >= math.MinInt8 && v <= math.MaxInt8:
				e = append(e, 0xFE, byte(v))
			case v >= math.MinInt16 && v <= math.MaxInt16:
				e = binary.LittleEndian.AppendUint16(append(e, 0xC0), uint16(v))
			case v >= -1<<23 && v < 1<<23:
				e = append(e, 0xF0, byte(v), byte(v>>8), byte(v>>16))
			case v >= math.MinInt32 && v <= math.MaxInt32:
				e = binary.LittleEndian.AppendUint32(append(e, 0xD0), uint32(v))
			default:
				e = binary.LittleEndian.AppendUint64(append(e, 0xE0), uint64(v))
			}
		} else {
			switch n := len(s); {
			case n < 64:
				e = append(e, byte(n))
			case n < 16384:
				e = append(e, 0x40|byte(n>>8), byte(n))
			default:
				e = binary.BigEndian.AppendUint32(append(e, 0x80), uint32(n))
			}
			e = append(e, s...)
		}
		tail = 10 + len(body)
		body = append(body, e...)
		prev = len(e)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(10+len(body)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(tail))
	b = binary.LittleEndian.AppendUint16(b, uint16(min(len(el), unknownCount)))
	return append(append(b, body...), 0xFF)
}

func zipmap(pairs ...string) []byte {
	b := []byte{byte(len(pairs) / 2)}
	for i := 0; i < len(pairs); i += 2 {
		b = append(b, byte(len(pairs[i])))
		b = append(b, pairs[i]...)
		b = append(b, byte(len(pairs[i+1])), 2) // 2 bytes of free space
		b = append(b, pairs[i+1]...)
		b = append(b, 0, 0)
	}
	return append(b, 0xFF)
}

func rawIDBytes(ms, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, ms), seq)
}

func millisBytes(t int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(t)) }

// streamValue builds a stream of type t with one node (master 5-0,
// master fields a, b): 5-0 {a 1 b 2} same fields, 5-1 {c 3} deleted,
// 6-0 {x y}; one group g (last 6-0) whose consumer alice has 5-0 and 6-0
// pending.
func streamValue(t byte) []byte {
	lp := listpack(
		"2", "1", "2", "a", "b", "0", // master: live, deleted, fields, terminator
		"2", "0", "0", "1", "2", "5", // same fields: flags, ms, seq, values, count
		"1", "0", "1", "1", "c", "3", "6", // deleted, own fields
		"0", "1", "0", "1", "x", "y", "6",
	)
	b := cat(rdbLen(1), rdbStr(string(rawIDBytes(5, 0))), rdbStr(string(lp)),
		rdbLen(2), rdbLen(6), rdbLen(0))
	if t != typeStreamListpacks {
		b = cat(b, rdbLen(5), rdbLen(0), rdbLen(5), rdbLen(1), rdbLen(3))
	}
	b = cat(b, rdbLen(1), rdbStr("g"), rdbLen(6), rdbLen(0))
	if t != typeStreamListpacks {
		b = cat(b, rdbLen(3))
	}
	b = cat(b, rdbLen(2),
		rawIDBytes(5, 0), millisBytes(1000), rdbLen(1),
		rawIDBytes(6, 0), millisBytes(2000), rdbLen(3),
		rdbLen(1), rdbStr("alice"), millisBytes(3000))
	if t == typeStreamListpack3 {
		b = cat(b, millisBytes(2500))
	}
	return cat(b, rdbLen(2), rawIDBytes(5, 0), rawIDBytes(6, 0))
}
