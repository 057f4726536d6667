// Package rdbcodec decodes the values of Redis's DUMP payloads (the RDB
// object encodings of Redis up to 7.2, RDB versions up to 11) into plain
// Go values, for RESTORE of payloads made by a real Redis. It knows
// nothing of gantry's keyspace: the caller turns an Object into its own
// value types.
//
// A payload is
//
//	type byte | object | RDB version (2 bytes, little endian) | CRC-64 (8 bytes, little endian)
//
// with the CRC-64 of Redis (Jones polynomial, reflected, no final xor) over
// everything before it. Every decoder checks its input fully (the checks
// of Redis's sanitize-dump-payload "yes", and more): a malformed payload is
// refused with an error wrapping ErrFormat, never a panic, and nothing is
// allocated beyond a bounded multiple of the payload's size (element counts
// are bounded by the bytes that hold them; LZF-compressed strings by
// MaxExpanded in total).
package rdbcodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"strconv"
)

// MaxVersion is the newest RDB version whose payloads Decode accepts
// (Redis 7.2's; Redis 7.0 writes 10).
const MaxVersion = 11

// MaxExpanded bounds the bytes all LZF-compressed strings of one payload
// may expand to: Redis's largest string (proto-max-bulk-len's default).
const MaxExpanded = 512 << 20

var (
	// ErrChecksum is a payload of a newer RDB version or with a wrong
	// checksum.
	ErrChecksum = errors.New("DUMP payload version or checksum are wrong")
	// ErrFormat is a payload whose value does not decode.
	ErrFormat = errors.New("bad data format")
)

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, a...)...)
}

// Kind is the type of a decoded value.
type Kind uint8

// The kinds of values.
const (
	KindString Kind = iota
	KindList
	KindSet
	KindHash
	KindZSet
	KindStream
)

func (k Kind) String() string {
	return [...]string{"string", "list", "set", "hash", "zset", "stream"}[k]
}

// Object is a decoded value. The byte slices may alias the payload.
type Object struct {
	Kind Kind
	// Str is the value of a string.
	Str []byte
	// Elems are a list's elements in order, a set's members, a hash's
	// fields and values alternating (in the payload's order), or a sorted
	// set's members.
	Elems [][]byte
	// Scores are a sorted set's scores, one per member (never NaN).
	Scores []float64
	// Stream is a stream's content.
	Stream *Stream
	// Packed is set for a sorted set encoded as a listpack or a ziplist:
	// Redis loads one as a listpack unless it has more members than
	// zset-max-listpack-entries, whatever their lengths.
	Packed bool
}

// Redis's RDB object types (rdb.h).
const (
	typeString          = 0
	typeList            = 1
	typeSet             = 2
	typeZSet            = 3
	typeHash            = 4
	typeZSet2           = 5
	typeHashZipmap      = 9
	typeListZiplist     = 10
	typeSetIntset       = 11
	typeZSetZiplist     = 12
	typeHashZiplist     = 13
	typeListQuicklist   = 14
	typeStreamListpacks = 15
	typeHashListpack    = 16
	typeZSetListpack    = 17
	typeListQuicklist2  = 18
	typeStreamListpack2 = 19
	typeSetListpack     = 20
	typeStreamListpack3 = 21
)

var crcTable = crc64.MakeTable(0x95AC9329AC4BC9B5) // Jones, reflected

// CRC64 is Redis's CRC-64 (crc64.c): the Jones polynomial, reflected,
// initial value 0 and no final xor.
func CRC64(crc uint64, p []byte) uint64 {
	// hash/crc64 inverts before and after; undo both
	return ^crc64.Update(^crc, crcTable, p)
}

// Footer returns the RDB version of a payload's footer; ok is false when
// the payload is too short to have one.
func Footer(p []byte) (version uint16, ok bool) {
	if len(p) < 10 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p[len(p)-10:]), true
}

// Verify checks a payload's footer (version at most MaxVersion, CRC-64)
// and returns the object part (type byte and value).
func Verify(p []byte) ([]byte, error) {
	v, ok := Footer(p)
	if !ok || v > MaxVersion {
		return nil, ErrChecksum
	}
	n := len(p) - 8
	if CRC64(0, p[:n]) != binary.LittleEndian.Uint64(p[n:]) {
		return nil, ErrChecksum
	}
	return p[:len(p)-10], nil
}

// Decode verifies a DUMP payload and decodes its value.
func Decode(p []byte) (*Object, error) {
	body, err := Verify(p)
	if err != nil {
		return nil, err
	}
	return DecodeObject(body)
}

// DecodeObject decodes a type byte and its value (a payload without its
// footer); the whole input must be used.
func DecodeObject(b []byte) (*Object, error) {
	if len(b) == 0 {
		return nil, bad("no type")
	}
	r := &reader{b: b[1:], budget: MaxExpanded}
	o, err := r.object(b[0])
	if err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, bad("%d bytes after the value", len(r.b))
	}
	return o, nil
}

// reader reads the RDB encodings of a value.
type reader struct {
	b      []byte
	budget int // bytes LZF strings may still expand to
}

func (r *reader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, bad("%d bytes wanted, %d left", n, len(r.b))
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s, nil
}

func (r *reader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, bad("truncated")
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

// Special string encodings of a length's top bits 11 (rdb.h RDB_ENC_*).
const (
	encInt8  = 0
	encInt16 = 1
	encInt32 = 2
	encLZF   = 3
)

// length reads an RDB length; encoded is true (and n the encoding) for
// a special string encoding.
func (r *reader) length() (n uint64, encoded bool, err error) {
	c, err := r.byte()
	if err != nil {
		return 0, false, err
	}
	switch c >> 6 {
	case 0:
		return uint64(c & 0x3f), false, nil
	case 1:
		d, err := r.byte()
		return uint64(c&0x3f)<<8 | uint64(d), false, err
	case 3:
		return uint64(c & 0x3f), true, nil
	}
	switch c {
	case 0x80:
		s, err := r.take(4)
		if err != nil {
			return 0, false, err
		}
		return uint64(binary.BigEndian.Uint32(s)), false, nil
	case 0x81:
		s, err := r.take(8)
		if err != nil {
			return 0, false, err
		}
		return binary.BigEndian.Uint64(s), false, nil
	}
	return 0, false, bad("unknown length encoding 0x%02x", c)
}

// plainLen reads a length that must not be a string encoding.
func (r *reader) plainLen() (uint64, error) {
	n, enc, err := r.length()
	if err == nil && enc {
		err = bad("string encoding where a length was expected")
	}
	return n, err
}

// count reads a number of elements each of which takes at least min
// bytes of what is left.
func (r *reader) count(min int) (int, error) {
	n, err := r.plainLen()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)/min) {
		return 0, bad("count %d exceeds the payload", n)
	}
	return int(n), nil
}

// str reads an RDB string (raw, integer or LZF-compressed).
func (r *reader) str() ([]byte, error) {
	n, enc, err := r.length()
	if err != nil {
		return nil, err
	}
	if !enc {
		return r.take(n)
	}
	switch n {
	case encInt8:
		s, err := r.take(1)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int8(s[0])), 10), nil
	case encInt16:
		s, err := r.take(2)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int16(binary.LittleEndian.Uint16(s))), 10), nil
	case encInt32:
		s, err := r.take(4)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(s))), 10), nil
	case encLZF:
		clen, err := r.plainLen()
		if err != nil {
			return nil, err
		}
		ulen, err := r.plainLen()
		if err != nil {
			return nil, err
		}
		c, err := r.take(clen)
		if err != nil {
			return nil, err
		}
		if ulen > uint64(r.budget) {
			return nil, bad("LZF string of %d bytes exceeds the limit", ulen)
		}
		out, err := LZFDecompress(c, int(ulen))
		if err != nil {
			return nil, err
		}
		r.budget -= len(out)
		return out, nil
	}
	return nil, bad("unknown string encoding %d", n)
}

// strs reads n strings.
func (r *reader) strs(n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for ; n > 0; n-- {
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *reader) object(t byte) (*Object, error) {
	switch t {
	case typeString:
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		return &Object{Kind: KindString, Str: s}, nil
	case typeList, typeSet:
		n, err := r.count(1)
		if err != nil {
			return nil, err
		}
		el, err := r.strs(n)
		if err != nil {
			return nil, err
		}
		if t == typeList {
			return collection(KindList, el)
		}
		return collection(KindSet, el)
	case typeHash:
		n, err := r.count(2)
		if err != nil {
			return nil, err
		}
		el, err := r.strs(2 * n)
		if err != nil {
			return nil, err
		}
		return collection(KindHash, el)
	case typeZSet, typeZSet2:
		return r.zset(t == typeZSet2)
	case typeListZiplist, typeSetIntset, typeZSetZiplist, typeHashZiplist,
		typeHashListpack, typeZSetListpack, typeSetListpack, typeHashZipmap:
		blob, err := r.str()
		if err != nil {
			return nil, err
		}
		return blobObject(t, blob)
	case typeListQuicklist, typeListQuicklist2:
		return r.quicklist(t == typeListQuicklist2)
	case typeStreamListpacks, typeStreamListpack2, typeStreamListpack3:
		s, err := r.stream(t)
		if err != nil {
			return nil, err
		}
		return &Object{Kind: KindStream, Stream: s}, nil
	}
	return nil, bad("unsupported object type %d", t)
}

// blobObject decodes a value held in one string: a ziplist, listpack,
// intset or zipmap.
func blobObject(t byte, blob []byte) (*Object, error) {
	var el [][]byte
	var err error
	switch t {
	case typeSetIntset:
		el, err = Intset(blob)
	case typeHashZipmap:
		el, err = Zipmap(blob)
	case typeListZiplist, typeZSetZiplist, typeHashZiplist:
		el, err = Ziplist(blob)
	default:
		var items []Item
		items, err = Listpack(blob)
		el = itemStrings(items)
	}
	if err != nil {
		return nil, err
	}
	switch t {
	case typeListZiplist:
		return collection(KindList, el)
	case typeSetIntset, typeSetListpack:
		return collection(KindSet, el)
	case typeHashZiplist, typeHashListpack, typeHashZipmap:
		if len(el)%2 != 0 {
			return nil, bad("hash with an odd number of elements")
		}
		return collection(KindHash, el)
	}
	// sorted sets: member, score, member, score...
	if len(el)%2 != 0 {
		return nil, bad("sorted set with an odd number of elements")
	}
	o := &Object{Kind: KindZSet, Elems: make([][]byte, 0, len(el)/2), Scores: make([]float64, 0, len(el)/2)}
	for i := 0; i < len(el); i += 2 {
		f, err := parseScore(el[i+1])
		if err != nil {
			return nil, err
		}
		o.Elems = append(o.Elems, el[i])
		o.Scores = append(o.Scores, f)
	}
	o.Packed = true
	return checkZSet(o)
}

// collection checks a decoded list, set or hash: never empty, no
// duplicate set members or hash fields.
func collection(k Kind, el [][]byte) (*Object, error) {
	if len(el) == 0 {
		return nil, bad("empty %s", k)
	}
	switch k {
	case KindSet:
		if err := unique(el, 1); err != nil {
			return nil, err
		}
	case KindHash:
		if err := unique(el, 2); err != nil {
			return nil, err
		}
	}
	return &Object{Kind: k, Elems: el}, nil
}

// unique checks that el[0], el[step], el[2*step]... are distinct.
func unique(el [][]byte, step int) error {
	seen := make(map[string]struct{}, len(el)/step)
	for i := 0; i < len(el); i += step {
		if _, dup := seen[string(el[i])]; dup {
			return bad("duplicate member %q", el[i])
		}
		seen[string(el[i])] = struct{}{}
	}
	return nil
}

func checkZSet(o *Object) (*Object, error) {
	if len(o.Elems) == 0 {
		return nil, bad("empty zset")
	}
	if err := unique(o.Elems, 1); err != nil {
		return nil, err
	}
	return o, nil
}
