package keyspace

import (
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
)

// DUMP payloads are gantry's own format, for every type:
//
//	payload = body version checksum
//	body    = type fields
//	version = 2 bytes, little endian (dumpVersion)
//	checksum= 8 bytes, little endian, CRC-64/ECMA of body and version
//
// type is one byte (0xC0 string, 0xC1 list, 0xC2 set, 0xC3 hash, 0xC4
// sorted set, 0xC5 stream, see stream_dump.go; Redis's own types are
// 0..21). Payloads made by Redis (RDB version 11 or older in the footer)
// are read too, see dump_redis.go. A string is
// uvarint(len) bytes; a collection is uvarint(count) then, per element,
// uvarint(len) bytes (a hash: field then value; a sorted set: member then
// the score as 8 bytes of IEEE 754, little endian). Collections are never
// empty and scores never NaN. The layout mirrors Redis's (value, 2-byte
// version, 8-byte CRC-64) so that tools that only pass payloads along work.
const (
	dumpString byte = 0xC0 + iota
	dumpList
	dumpSet
	dumpHash
	dumpZSet
	dumpStream
)

// dumpVersion is the payload format version; a payload of another version
// is refused.
const dumpVersion uint16 = 0x4701 // "G" 1

var crcTable = crc64.MakeTable(crc64.ECMA)

var (
	// ErrDumpChecksum is Redis's reply to a payload of another version or
	// a wrong checksum (foreign or corrupt).
	ErrDumpChecksum = errors.New("ERR DUMP payload version or checksum are wrong")
	// ErrDumpFormat is a payload whose checksum is right but whose body
	// does not decode.
	ErrDumpFormat = errors.New("ERR Bad data format")
)

func appendDumpString(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Dump serializes a value (without its expiry, which RESTORE takes
// as an argument, as in Redis); nil for a value type without a format.
func Dump(e *Entry) []byte {
	var b []byte
	switch e.Kind() {
	case KindString:
		b = append(b, dumpString)
		b = appendDumpString(b, e.Bytes())
	case Lists.Kind():
		v := Lists.Of(e)
		b = append(b, dumpList)
		b = binary.AppendUvarint(b, uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			b = appendDumpString(b, v.At(i))
		}
	case Sets.Kind():
		v := Sets.Of(e)
		b = append(b, dumpSet)
		b = binary.AppendUvarint(b, uint64(v.Len()))
		v.Each(func(m []byte) { b = appendDumpString(b, m) })
	case Hashes.Kind():
		v := Hashes.Of(e)
		b = append(b, dumpHash)
		b = binary.AppendUvarint(b, uint64(v.Len()))
		v.Each(func(f, x []byte) {
			b = appendDumpString(b, f)
			b = appendDumpString(b, x)
		})
	case ZSets.Kind():
		v := ZSets.Of(e)
		b = append(b, dumpZSet)
		b = binary.AppendUvarint(b, uint64(v.Card()))
		for x := v.First(); x.Valid(); x = x.Next() {
			b = appendDumpString(b, x.MemberBytes())
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x.Score()))
		}
	case Streams.Kind():
		b = appendDumpStream(append(b, dumpStream), Streams.Of(e))
	default:
		return nil // a type registered elsewhere has no DUMP format yet
	}
	return SealDump(b)
}

// SealDump appends the version and the checksum to a body.
func SealDump(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, dumpVersion)
	return binary.LittleEndian.AppendUint64(b, crc64.Checksum(b, crcTable))
}

// verifyDump checks the footer of a payload and returns its body.
func verifyDump(p []byte) ([]byte, error) {
	if len(p) < 1+10 {
		return nil, ErrDumpChecksum
	}
	n := len(p) - 10
	if binary.LittleEndian.Uint16(p[n:]) != dumpVersion {
		return nil, ErrDumpChecksum
	}
	if crc64.Checksum(p[:n+2], crcTable) != binary.LittleEndian.Uint64(p[n+2:]) {
		return nil, ErrDumpChecksum
	}
	return p[:n], nil
}

// dumpReader decodes a body; any malformed input is an error, never a
// panic or a huge allocation (counts are bounded by the bytes left).
type dumpReader struct {
	b   []byte
	err bool
}

func (r *dumpReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// view is bytes without the copy: the slice aliases the payload.
func (r *dumpReader) view() []byte {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		r.b = nil
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *dumpReader) bytes() []byte {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		r.b = nil
		return nil
	}
	s := make([]byte, n)
	copy(s, r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads an element count; every element takes at least min bytes.
func (r *dumpReader) count(min int) int {
	n := r.uvarint()
	if r.err || n == 0 || n > uint64(len(r.b)/min) {
		r.err = true
		r.b = nil
		return 0
	}
	return int(n)
}

// ParseDump decodes a payload into a new entry (without expiry): one of
// gantry's own, or one made by Redis's DUMP (dump_redis.go), told apart
// by the version in the footer.
func ParseDump(p []byte) (*Entry, error) {
	return ParseDumpWithin(p, DefaultHashLimits, DefaultZSetLimits)
}

// ParseDumpWithin is ParseDump with the limits of the small forms of a
// hash and a sorted set.
func ParseDumpWithin(p []byte, lim HashLimits, zlim ZSetLimits) (*Entry, error) {
	if len(p) >= 10 && binary.LittleEndian.Uint16(p[len(p)-10:]) != dumpVersion {
		return parseRedisDump(p, lim, zlim)
	}
	body, err := verifyDump(p)
	if err != nil {
		return nil, err
	}
	r := &dumpReader{b: body[1:]}
	var e *Entry
	switch body[0] {
	case dumpString:
		s := r.bytes()
		if s == nil && !r.err {
			s = []byte{}
		}
		e = NewString(s, 0)
	case dumpList:
		l := &List{}
		for n := r.count(1); n > 0 && !r.err; n-- {
			l.PushBack(r.view()) // the list copies it
		}
		e = Lists.NewEntry(l)
	case dumpSet:
		s := NewSet()
		for n := r.count(1); n > 0 && !r.err; n-- {
			s.Add(r.bytes())
		}
		e = Sets.NewEntry(s)
	case dumpHash:
		h := NewHash()
		for n := r.count(2); n > 0 && !r.err; n-- {
			f := r.bytes()
			v := r.bytes()
			if !r.err {
				h.SetWithin(f, v, lim)
			}
		}
		e = Hashes.NewEntry(h)
	case dumpZSet:
		z := NewZSet()
		for n := r.count(9); n > 0 && !r.err; n-- {
			m := r.bytes()
			if r.err || len(r.b) < 8 {
				r.err = true
				break
			}
			score := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
			r.b = r.b[8:]
			if math.IsNaN(score) {
				r.err = true
				break
			}
			z.AddWithin(m, score, zlim)
		}
		e = ZSets.NewEntry(z)
	case dumpStream:
		st := r.stream()
		if r.err {
			return nil, ErrDumpFormat
		}
		e = Streams.NewEntry(st)
	default:
		return nil, ErrDumpFormat
	}
	if r.err || len(r.b) != 0 {
		return nil, ErrDumpFormat
	}
	return e, nil
}
