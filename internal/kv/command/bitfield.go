package command

import (
	"math"
)

// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type
// offset increment] [OVERFLOW WRAP|SAT|FAIL] ... and BITFIELD_RO (GET
// only). Every operation is parsed before any runs; a write grows the
// string to the farthest bit any write reaches, as Redis does.

const errBitfieldType = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."

type bfOverflow int

const (
	bfWrap bfOverflow = iota
	bfSat
	bfFail
)

type bfOpKind int

const (
	bfGet bfOpKind = iota
	bfSet
	bfIncr
)

type bitfieldOp struct {
	kind     bfOpKind
	signed   bool
	bits     int
	offset   uint64
	value    int64
	overflow bfOverflow
}

// ParseBitfieldType parses "i1".."i64" or "u1".."u63".
func ParseBitfieldType(b []byte) (signed bool, nbits int, ok bool) {
	if len(b) < 2 || (b[0] != 'i' && b[0] != 'u') {
		return false, 0, false
	}
	signed = b[0] == 'i'
	n, ok := parseStrictInt(b[1:])
	if !ok || n < 1 || (signed && n > 64) || (!signed && n > 63) {
		return false, 0, false
	}
	return signed, int(n), true
}

// parseBitfield parses the operations of c.Args[2:].
func (c *Ctx) parseBitfield() (ops []bitfieldOp, highest uint64, writes bool, ok bool) {
	overflow := bfWrap
	for j := 2; j < len(c.Args); j++ {
		rem := len(c.Args) - j - 1
		var op bitfieldOp
		switch a := c.Args[j]; {
		case EqualFold(a, "get") && rem >= 2:
			op.kind = bfGet
		case EqualFold(a, "set") && rem >= 3:
			op.kind = bfSet
		case EqualFold(a, "incrby") && rem >= 3:
			op.kind = bfIncr
		case EqualFold(a, "overflow") && rem >= 1:
			j++
			switch t := c.Args[j]; {
			case EqualFold(t, "wrap"):
				overflow = bfWrap
			case EqualFold(t, "sat"):
				overflow = bfSat
			case EqualFold(t, "fail"):
				overflow = bfFail
			default:
				c.W.Error("ERR Invalid OVERFLOW type specified")
				return nil, 0, false, false
			}
			continue
		default:
			c.W.Error(ErrSyntax)
			return nil, 0, false, false
		}
		signed, nbits, tok := ParseBitfieldType(c.Args[j+1])
		if !tok {
			c.W.Error(errBitfieldType)
			return nil, 0, false, false
		}
		off, ok := c.bitOffset(c.Args[j+2], nbits)
		if !ok {
			return nil, 0, false, false
		}
		op.signed, op.bits, op.offset, op.overflow = signed, nbits, off, overflow
		if op.kind != bfGet {
			writes = true
			highest = max(highest, off+uint64(nbits)-1)
			if op.value, ok = c.ArgInt(j + 3); !ok {
				return nil, 0, false, false
			}
			j++
		}
		j += 2
		ops = append(ops, op)
	}
	return ops, highest, writes, true
}

func cmdBitfield(c *Ctx) {
	ops, highest, writes, ok := c.parseBitfield()
	if !ok {
		return
	}
	var b []byte
	grown := false
	if !writes {
		e, ok := c.lookupString(c.Args[1])
		if !ok {
			return
		}
		if e != nil {
			b = e.Bytes()
		}
	} else {
		if c.Cmd.Name == "bitfield_ro" {
			c.W.Error("ERR BITFIELD_RO only supports the GET subcommand")
			return
		}
		e, g, ok := c.stringForBits(c.Args[1], highest)
		if !ok {
			return
		}
		b, grown = e.Bytes(), g
	}
	c.W.Array(len(ops))
	changes := 0
	for _, op := range ops {
		if op.kind == bfGet {
			// read from a zero-padded copy of the 9 bytes that can hold it
			var buf [9]byte
			byt := op.offset >> 3
			for i := uint64(0); i < 9 && byt+i < uint64(len(b)); i++ {
				buf[i] = b[byt+i]
			}
			v := getBits(buf[:], op.offset-byt*8, op.bits)
			if op.signed {
				c.W.Int(signExtend(v, op.bits))
			} else {
				c.W.Int(int64(v))
			}
			continue
		}
		old := getBits(b, op.offset, op.bits)
		var newv, ret uint64
		var overflow bool
		if op.signed {
			oldv := signExtend(old, op.bits)
			var n int64
			if op.kind == bfIncr {
				var wrapped int64
				overflow, wrapped = signedOverflow(oldv, op.value, op.bits, op.overflow)
				n = oldv + op.value
				if overflow {
					n = wrapped
				}
				ret = uint64(n)
			} else {
				var wrapped int64
				overflow, wrapped = signedOverflow(op.value, 0, op.bits, op.overflow)
				n = op.value
				if overflow {
					n = wrapped
				}
				ret = uint64(oldv)
			}
			newv = uint64(n)
		} else {
			if op.kind == bfIncr {
				var wrapped uint64
				overflow, wrapped = unsignedOverflow(old, op.value, op.bits, op.overflow)
				newv = old + uint64(op.value)
				if overflow {
					newv = wrapped
				}
				ret = newv
			} else {
				var wrapped uint64
				overflow, wrapped = unsignedOverflow(uint64(op.value), 0, op.bits, op.overflow)
				newv = uint64(op.value)
				if overflow {
					newv = wrapped
				}
				ret = old
			}
		}
		if overflow && op.overflow == bfFail {
			c.W.Null()
			continue
		}
		c.W.Int(int64(ret))
		setBits(b, op.offset, op.bits, newv)
		if grown || old != newv&mask(op.bits) {
			changes++
		}
	}
	c.Dirty += changes
}

func mask(n int) uint64 {
	if n == 64 {
		return math.MaxUint64
	}
	return 1<<uint(n) - 1
}

// getBits reads n bits at bit offset off, most significant first.
func getBits(p []byte, off uint64, n int) uint64 {
	var v uint64
	for j := 0; j < n; j++ {
		byt, bit := off>>3, 7-off&7
		v = v<<1 | uint64(p[byt]>>bit&1)
		off++
	}
	return v
}

// setBits writes the low n bits of v at bit offset off.
func setBits(p []byte, off uint64, n int, v uint64) {
	for j := 0; j < n; j++ {
		bitval := byte(v >> uint(n-1-j) & 1)
		byt, bit := off>>3, 7-off&7
		p[byt] = p[byt]&^(1<<bit) | bitval<<bit
		off++
	}
}

func signExtend(v uint64, n int) int64 {
	if n < 64 && v&(1<<uint(n-1)) != 0 {
		v |= math.MaxUint64 << uint(n)
	}
	return int64(v)
}

// signedOverflow reports whether value+incr overflows an n-bit signed
// integer and the value the overflow policy gives (Redis's
// checkSignedBitfieldOverflow).
func signedOverflow(value, incr int64, n int, ow bfOverflow) (bool, int64) {
	maxv := int64(math.MaxInt64)
	if n != 64 {
		maxv = 1<<uint(n-1) - 1
	}
	minv := -maxv - 1
	maxincr := int64(uint64(maxv) - uint64(value))
	minincr := minv - value
	wrap := func() int64 {
		msb := uint64(1) << uint(n-1)
		r := uint64(value) + uint64(incr)
		if n < 64 {
			m := uint64(math.MaxUint64) << uint(n)
			if r&msb != 0 {
				r |= m
			} else {
				r &^= m
			}
		}
		return int64(r)
	}
	if value > maxv || (n != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
		if ow == bfWrap {
			return true, wrap()
		}
		return true, maxv
	}
	if value < minv || (n != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
		if ow == bfWrap {
			return true, wrap()
		}
		return true, minv
	}
	return false, 0
}

// unsignedOverflow is Redis's checkUnsignedBitfieldOverflow.
func unsignedOverflow(value uint64, incr int64, n int, ow bfOverflow) (bool, uint64) {
	maxv := uint64(1)<<uint(n) - 1
	maxincr := int64(maxv - value)
	minincr := -int64(value)
	wrap := func() uint64 {
		return (value + uint64(incr)) &^ (math.MaxUint64 << uint(n))
	}
	if value > maxv || (incr > 0 && incr > maxincr) {
		if ow == bfWrap {
			return true, wrap()
		}
		return true, maxv
	}
	if incr < 0 && incr < minincr {
		if ow == bfWrap {
			return true, wrap()
		}
		return true, 0
	}
	return false, 0
}
