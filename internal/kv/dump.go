package kv

import (
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
	"strconv"
)

// DUMP payloads are gantry's own format, for every type:
//
//	payload = body version checksum
//	body    = type fields
//	version = 2 bytes, little endian (dumpVersion)
//	checksum= 8 bytes, little endian, CRC-64/ECMA of body and version
//
// type is one byte (0xC0 string, 0xC1 list, 0xC2 set, 0xC3 hash, 0xC4
// sorted set; Redis's own types are 0..21, so a Redis payload is refused by
// its type even if its checksum happened to match). A string is
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
)

// dumpVersion is the payload format version; a payload of another version
// is refused.
const dumpVersion uint16 = 0x4701 // "G" 1

var crcTable = crc64.MakeTable(crc64.ECMA)

var (
	// errDumpChecksum is Redis's reply to a payload of another version or
	// a wrong checksum (foreign or corrupt).
	errDumpChecksum = errors.New("ERR DUMP payload version or checksum are wrong")
	// errDumpFormat is a payload whose checksum is right but whose body
	// does not decode.
	errDumpFormat = errors.New("ERR Bad data format")
)

func appendDumpString(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// dumpEntry serializes a value (without its expiry, which RESTORE takes
// as an argument, as in Redis).
func dumpEntry(e *entry) []byte {
	var b []byte
	switch v := e.object().(type) {
	case nil:
		b = append(b, dumpString)
		b = appendDumpString(b, e.bytes())
	case *list:
		b = append(b, dumpList)
		b = binary.AppendUvarint(b, uint64(v.len()))
		for i := 0; i < v.len(); i++ {
			b = appendDumpString(b, v.at(i))
		}
	case *set:
		b = append(b, dumpSet)
		b = binary.AppendUvarint(b, uint64(v.len()))
		v.each(func(m []byte) { b = appendDumpString(b, m) })
	case *hash:
		b = append(b, dumpHash)
		b = binary.AppendUvarint(b, uint64(v.len()))
		v.each(func(f, x []byte) {
			b = appendDumpString(b, f)
			b = appendDumpString(b, x)
		})
	case *zset:
		b = append(b, dumpZSet)
		b = binary.AppendUvarint(b, uint64(v.card()))
		for x := v.header.level[0].forward; x != nil; x = x.level[0].forward {
			b = appendDumpString(b, []byte(x.member))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x.score))
		}
	}
	return sealDump(b)
}

// sealDump appends the version and the checksum to a body.
func sealDump(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, dumpVersion)
	return binary.LittleEndian.AppendUint64(b, crc64.Checksum(b, crcTable))
}

// verifyDump checks the footer of a payload and returns its body.
func verifyDump(p []byte) ([]byte, error) {
	if len(p) < 1+10 {
		return nil, errDumpChecksum
	}
	n := len(p) - 10
	if binary.LittleEndian.Uint16(p[n:]) != dumpVersion {
		return nil, errDumpChecksum
	}
	if crc64.Checksum(p[:n+2], crcTable) != binary.LittleEndian.Uint64(p[n+2:]) {
		return nil, errDumpChecksum
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

// parseDump decodes a payload into a new entry (without expiry).
func parseDump(p []byte) (*entry, error) {
	body, err := verifyDump(p)
	if err != nil {
		return nil, err
	}
	r := &dumpReader{b: body[1:]}
	var e *entry
	switch body[0] {
	case dumpString:
		s := r.bytes()
		if s == nil && !r.err {
			s = []byte{}
		}
		e = newStringEntry(s, 0)
	case dumpList:
		l := &list{}
		for n := r.count(1); n > 0 && !r.err; n-- {
			l.pushBack(r.bytes())
		}
		e = newObjectEntry(l)
	case dumpSet:
		s := newSet()
		for n := r.count(1); n > 0 && !r.err; n-- {
			s.add(r.bytes())
		}
		e = newObjectEntry(s)
	case dumpHash:
		h := newHash()
		for n := r.count(2); n > 0 && !r.err; n-- {
			f := r.bytes()
			v := r.bytes()
			if !r.err {
				h.set(f, v)
			}
		}
		e = newObjectEntry(h)
	case dumpZSet:
		z := newZSet()
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
			z.add(string(m), score)
		}
		e = newObjectEntry(z)
	default:
		return nil, errDumpFormat
	}
	if r.err || len(r.b) != 0 {
		return nil, errDumpFormat
	}
	return e, nil
}

// DUMP key
func cmdDump(c *Client) {
	e := c.lookup(c.args[1])
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(dumpEntry(e))
}

var bABSTTL = []byte("ABSTTL")

// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ
// frequency], and RESTORE-ASKING (the same, routed as after ASKING). The
// log records it with an absolute expiry so a replay gives the same key.
func cmdRestore(c *Client) {
	key := c.args[1]
	ttl, ok := parseInt(c.args[2])
	if !ok {
		c.w.Error(errNotInt)
		return
	}
	replace, absTTL := false, false
	for i := 4; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case equalFold(a, "replace"):
			replace = true
		case equalFold(a, "absttl"):
			absTTL = true
		case equalFold(a, "idletime") && i+1 < len(c.args):
			n, ok := c.argInt(i + 1)
			if !ok {
				return
			}
			if n < 0 {
				c.w.Error("ERR Invalid IDLETIME value, must be >= 0")
				return
			}
			i++
		case equalFold(a, "freq") && i+1 < len(c.args):
			n, ok := c.argInt(i + 1)
			if !ok {
				return
			}
			if n < 0 || n > 255 {
				c.w.Error("ERR Invalid FREQ value, must be >= 0 and <= 255")
				return
			}
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if ttl < 0 {
		c.w.Error("ERR Invalid TTL value, must be >= 0")
		return
	}
	if !replace && c.lookup(key) != nil {
		c.w.Error("BUSYKEY Target key name already exists.")
		return
	}
	e, err := parseDump(c.args[3])
	if err != nil {
		c.w.Error(err.Error())
		return
	}
	var exp int64
	switch {
	case ttl == 0:
	case absTTL:
		exp = ttl
	default:
		exp = c.now + ttl
		if exp < c.now { // overflow
			c.w.Error("ERR Invalid TTL value, must be >= 0")
			return
		}
	}
	existed := c.lookup(key) != nil
	if existed {
		c.srv.ks.deleteLocked(key)
	}
	if exp != 0 && exp <= c.now {
		// already expired: as Redis, the key is not created (a replaced
		// one is deleted)
		if existed {
			c.dirty++
			c.log(bDEL, key)
		}
		c.w.OK()
		return
	}
	e.exp = exp
	c.srv.ks.addLocked(key, e)
	c.dirty++
	if exp != 0 {
		c.log(bRESTORE, key, strconv.AppendInt(nil, exp, 10), c.args[3], bREPLACE, bABSTTL)
	} else {
		c.log(bRESTORE, key, []byte("0"), c.args[3], bREPLACE)
	}
	c.w.OK()
}

var (
	bRESTORE = []byte("RESTORE")
	bREPLACE = []byte("REPLACE")
)
