package keyspace

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
)

// HyperLogLog, stored as a string value in Redis's own representation, so
// a value moves between gantry and Redis (GET/SET, DUMP of the string)
// and PFCOUNT gives Redis's answers: a 16-byte header ("HYLL", the
// encoding, three unused bytes, the cached cardinality, little endian,
// whose top bit marks it stale), then 16384 6-bit registers, either dense
// (12288 bytes) or sparse (run-length opcodes ZERO 00xxxxxx, XZERO
// 01xxxxxx yyyyyyyy, VAL 1vvvvvxx). Elements are hashed with
// MurmurHash64A (seed 0xadc83b19) and the cardinality is estimated as
// Redis does (Ertl's improved estimator on the register histogram).

const (
	hllP         = 14
	hllQ         = 64 - hllP
	hllRegisters = 1 << hllP
	hllPMask     = hllRegisters - 1
	hllBits      = 6
	hllRegMax    = 1<<hllBits - 1
	hllHdrSize   = 16
	// HLLDenseSize is the length of a dense HyperLogLog string.
	HLLDenseSize = hllHdrSize + (hllRegisters*hllBits+7)/8

	hllDense  = 0
	hllSparse = 1

	sparseXZeroBit   = 0x40
	sparseValBit     = 0x80
	sparseValMax     = 32
	sparseValMaxLen  = 4
	sparseZeroMaxLen = 64
	sparseXZeroMax   = 16384

	hllAlphaInf = 0.721347520444481703680 // 0.5/ln(2)
)

// Errors of HyperLogLog values, with Redis's replies (the final period is
// Redis's).
var (
	ErrHLLType = errors.New("WRONGTYPE Key is not a valid HyperLogLog string value.") //nolint:staticcheck // ST1005: Redis's text

	ErrHLLCorrupt = errors.New("INVALIDOBJ Corrupted HLL object detected")
)

// MurmurHash64A is the 64-bit MurmurHash2 Redis hashes HyperLogLog
// elements with (little-endian reads, as Redis on every platform).
func MurmurHash64A(key []byte, seed uint64) uint64 {
	const m = 0xc6a4a7935bd1e995
	const r = 47
	h := seed ^ uint64(len(key))*m
	for len(key) >= 8 {
		k := binary.LittleEndian.Uint64(key)
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
		key = key[8:]
	}
	if n := len(key); n > 0 {
		for i := n - 1; i >= 0; i-- {
			h ^= uint64(key[i]) << (8 * uint(i))
		}
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}

// hllPatLen returns the register of an element and the length of the
// 000..1 pattern of its hash.
func hllPatLen(ele []byte) (index int, count uint8) {
	hash := MurmurHash64A(ele, 0xadc83b19)
	index = int(hash & hllPMask)
	hash >>= hllP
	hash |= 1 << hllQ // the loop ends, count <= Q+1
	count = 1
	for bit := uint64(1); hash&bit == 0; bit <<= 1 {
		count++
	}
	return index, count
}

// NewHLL returns an empty HyperLogLog (sparse: one XZERO of every
// register), as PFADD creates it.
func NewHLL() []byte {
	b := make([]byte, hllHdrSize, hllHdrSize+2)
	copy(b, "HYLL")
	b[4] = hllSparse
	l := sparseXZeroMax - 1
	return append(b, byte(l>>8)|sparseXZeroBit, byte(l&0xff))
}

// IsHLL checks a string is a HyperLogLog: the magic, a known encoding, and
// the exact length of a dense one. It does not look at the registers.
func IsHLL(b []byte) error {
	if len(b) < hllHdrSize || string(b[:4]) != "HYLL" || b[4] > hllSparse ||
		(b[4] == hllDense && len(b) != HLLDenseSize) {
		return ErrHLLType
	}
	return nil
}

// HLLIsSparse reports whether a HyperLogLog uses the sparse encoding.
func HLLIsSparse(b []byte) bool { return b[4] == hllSparse }

func hllInvalidate(b []byte) { b[15] |= 1 << 7 }

// HLLCachedCount returns the cached cardinality if it is valid.
func HLLCachedCount(b []byte) (uint64, bool) {
	if b[15]&(1<<7) != 0 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), true
}

// HLLSetCache stores a computed cardinality in the header.
func HLLSetCache(b []byte, card uint64) { binary.LittleEndian.PutUint64(b[8:16], card) }

// denseGet and denseSet read and write register i of dense registers r
// (the byte after the last register is not part of the string: the last
// register never reaches it).
func denseGet(r []byte, i int) uint8 {
	byt, fb := i*hllBits/8, uint(i*hllBits&7)
	v := uint(r[byt]) >> fb
	if byt+1 < len(r) {
		v |= uint(r[byt+1]) << (8 - fb)
	}
	return uint8(v & hllRegMax)
}

func denseSet(r []byte, i int, val uint8) {
	byt, fb := i*hllBits/8, uint(i*hllBits&7)
	v := uint(val)
	r[byt] &^= byte(hllRegMax << fb)
	r[byt] |= byte(v << fb)
	if byt+1 < len(r) {
		r[byt+1] &^= byte(hllRegMax >> (8 - fb))
		r[byt+1] |= byte(v >> (8 - fb))
	}
}

func denseSetIfGreater(r []byte, i int, count uint8) bool {
	if count > denseGet(r, i) {
		denseSet(r, i, count)
		return true
	}
	return false
}

func sparseIsZero(c byte) bool  { return c&0xc0 == 0 }
func sparseIsXZero(c byte) bool { return c&0xc0 == sparseXZeroBit }
func sparseIsVal(c byte) bool   { return c&sparseValBit != 0 }
func sparseZeroLen(c byte) int  { return int(c&0x3f) + 1 }
func sparseXZeroLen(c, d byte) int {
	return (int(c&0x3f)<<8 | int(d)) + 1
}
func sparseValValue(c byte) int { return int(c>>2&0x1f) + 1 }
func sparseValLen(c byte) int   { return int(c&0x3) + 1 }
func sparseVal(val, n int) byte { return byte((val-1)<<2|(n-1)) | sparseValBit }

// next returns the byte after opcode i, 0 past the end (where Redis reads
// the string's terminating zero).
func next(p []byte, i int) byte {
	if i+1 < len(p) {
		return p[i+1]
	}
	return 0
}

func appendZeros(b []byte, n int) []byte {
	if n > sparseZeroMaxLen {
		l := n - 1
		return append(b, byte(l>>8)|sparseXZeroBit, byte(l&0xff))
	}
	return append(b, byte(n-1))
}

// HLLToDense converts a sparse HyperLogLog to a new dense one (keeping the
// header's cache); a dense one is returned as is.
func HLLToDense(b []byte) ([]byte, error) {
	if b[4] == hllDense {
		return b, nil
	}
	d := make([]byte, HLLDenseSize)
	copy(d, b[:hllHdrSize])
	d[4] = hllDense
	regs := d[hllHdrSize:]
	idx := 0
	p := b[hllHdrSize:]
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case sparseIsZero(c):
			idx += sparseZeroLen(c)
			i++
		case sparseIsXZero(c):
			idx += sparseXZeroLen(c, next(p, i))
			i += 2
		default:
			n, v := sparseValLen(c), sparseValValue(c)
			if idx+n > hllRegisters {
				return nil, ErrHLLCorrupt
			}
			for ; n > 0; n-- {
				denseSet(regs, idx, uint8(v))
				idx++
			}
			i++
		}
	}
	if idx != hllRegisters {
		return nil, ErrHLLCorrupt
	}
	return d, nil
}

// hllSparseSet sets register index to count if it is greater, in the
// sparse representation b, as Redis's hllSparseSet does (so the bytes are
// Redis's); it promotes to dense when a value does not fit a VAL opcode or
// the string would exceed maxBytes. It returns the new string and whether
// the register changed.
func hllSparseSet(b []byte, index int, count uint8, maxBytes int) ([]byte, bool, error) {
	if count > sparseValMax {
		return hllPromote(b, index, count)
	}
	p := b[hllHdrSize:]
	first, span := 0, 0
	pos, prev := 0, -1
	for pos < len(p) {
		c := p[pos]
		oplen := 1
		switch {
		case sparseIsZero(c):
			span = sparseZeroLen(c)
		case sparseIsVal(c):
			span = sparseValLen(c)
		default:
			if pos+1 >= len(p) {
				return nil, false, ErrHLLCorrupt
			}
			span = sparseXZeroLen(c, p[pos+1])
			oplen = 2
		}
		if index <= first+span-1 {
			break
		}
		prev = pos
		pos += oplen
		first += span
	}
	if span == 0 || pos >= len(p) {
		return nil, false, ErrHLLCorrupt
	}
	c := p[pos]
	isZero, isXZero, isVal := sparseIsZero(c), sparseIsXZero(c), sparseIsVal(c)
	var runlen int
	switch {
	case isZero:
		runlen = sparseZeroLen(c)
	case isXZero:
		if pos+1 >= len(p) {
			return nil, false, ErrHLLCorrupt
		}
		runlen = sparseXZeroLen(c, p[pos+1])
	default:
		runlen = sparseValLen(c)
	}
	updated := false
	if isVal {
		old := sparseValValue(c)
		if old >= int(count) {
			return b, false, nil
		}
		if runlen == 1 {
			p[pos] = sparseVal(int(count), 1)
			updated = true
		}
	}
	if !updated && isZero && runlen == 1 {
		p[pos] = sparseVal(int(count), 1)
		updated = true
	}
	if !updated {
		// split the opcode: at worst XZERO-VAL-XZERO, 5 bytes
		seq := make([]byte, 0, 5)
		last := first + span - 1
		if isZero || isXZero {
			if index != first {
				seq = appendZeros(seq, index-first)
			}
			seq = append(seq, sparseVal(int(count), 1))
			if index != last {
				seq = appendZeros(seq, last-index)
			}
		} else {
			cur := sparseValValue(c)
			if index != first {
				seq = append(seq, sparseVal(cur, index-first))
			}
			seq = append(seq, sparseVal(int(count), 1))
			if index != last {
				seq = append(seq, sparseVal(cur, last-index))
			}
		}
		oldlen := 1
		if isXZero {
			oldlen = 2
		}
		if delta := len(seq) - oldlen; delta > 0 && len(b)+delta > maxBytes {
			return hllPromote(b, index, count)
		}
		nb := make([]byte, 0, len(b)+len(seq)-oldlen)
		nb = append(nb, b[:hllHdrSize+pos]...)
		nb = append(nb, seq...)
		nb = append(nb, b[hllHdrSize+pos+oldlen:]...)
		b = nb
		p = b[hllHdrSize:]
	}
	// merge adjacent VAL opcodes of the same value, scanning up to 5
	// opcodes from the previous one
	i := 0
	if prev >= 0 {
		i = prev
	}
	for scan := 5; i < len(p) && scan > 0; scan-- {
		c := p[i]
		if sparseIsXZero(c) {
			i += 2
			continue
		} else if sparseIsZero(c) {
			i++
			continue
		}
		if i+1 < len(p) && sparseIsVal(p[i+1]) {
			v1, v2 := sparseValValue(c), sparseValValue(p[i+1])
			if v1 == v2 {
				if l := sparseValLen(c) + sparseValLen(p[i+1]); l <= sparseValMaxLen {
					p[i+1] = sparseVal(v1, l)
					copy(p[i:], p[i+1:])
					b = b[:len(b)-1]
					p = p[:len(p)-1]
					continue
				}
			}
		}
		i++
	}
	hllInvalidate(b)
	return b, true, nil
}

func hllPromote(b []byte, index int, count uint8) ([]byte, bool, error) {
	d, err := HLLToDense(b)
	if err != nil {
		return nil, false, err
	}
	denseSet(d[hllHdrSize:], index, count)
	hllInvalidate(d)
	return d, true, nil
}

// HLLAdd adds an element; it returns the (possibly new) string and
// whether a register changed. maxBytes is hll-sparse-max-bytes.
func HLLAdd(b, ele []byte, maxBytes int) ([]byte, bool, error) {
	index, count := hllPatLen(ele)
	return hllSet(b, index, count, maxBytes)
}

func hllSet(b []byte, index int, count uint8, maxBytes int) ([]byte, bool, error) {
	if b[4] == hllDense {
		if denseSetIfGreater(b[hllHdrSize:], index, count) {
			hllInvalidate(b)
			return b, true, nil
		}
		return b, false, nil
	}
	return hllSparseSet(b, index, count, maxBytes)
}

// HLLMergeInto raises max (16384 registers, one byte each) to the
// registers of b.
func HLLMergeInto(max []uint8, b []byte) error {
	if b[4] == hllDense {
		r := b[hllHdrSize:]
		for i := range max {
			if v := denseGet(r, i); v > max[i] {
				max[i] = v
			}
		}
		return nil
	}
	idx := 0
	p := b[hllHdrSize:]
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case sparseIsZero(c):
			idx += sparseZeroLen(c)
			i++
		case sparseIsXZero(c):
			idx += sparseXZeroLen(c, next(p, i))
			i += 2
		default:
			n, v := sparseValLen(c), uint8(sparseValValue(c))
			if idx+n > hllRegisters {
				return ErrHLLCorrupt
			}
			for ; n > 0; n-- {
				if v > max[idx] {
					max[idx] = v
				}
				idx++
			}
			i++
		}
	}
	if idx != hllRegisters {
		return ErrHLLCorrupt
	}
	return nil
}

// HLLFromRegisters writes registers into b (a HyperLogLog, dense when
// dense is set or b is dense), as PFMERGE does, and returns the result.
func HLLFromRegisters(b []byte, regs []uint8, dense bool, maxBytes int) ([]byte, error) {
	var err error
	if dense {
		if b, err = HLLToDense(b); err != nil {
			return nil, err
		}
	}
	for i, v := range regs {
		if v == 0 {
			continue
		}
		if b, _, err = hllSet(b, i, v, maxBytes); err != nil {
			return nil, err
		}
	}
	hllInvalidate(b)
	return b, nil
}

// HLLCount estimates the cardinality of b (without using the cache).
func HLLCount(b []byte) (uint64, error) {
	var histo [64]int
	p := b[hllHdrSize:]
	if b[4] == hllDense {
		for i := 0; i < hllRegisters; i++ {
			histo[denseGet(p, i)]++
		}
	} else {
		idx := 0
		for i := 0; i < len(p); {
			switch c := p[i]; {
			case sparseIsZero(c):
				n := sparseZeroLen(c)
				idx += n
				histo[0] += n
				i++
			case sparseIsXZero(c):
				n := sparseXZeroLen(c, next(p, i))
				idx += n
				histo[0] += n
				i += 2
			default:
				n := sparseValLen(c)
				idx += n
				histo[sparseValValue(c)] += n
				i++
			}
		}
		if idx != hllRegisters {
			return 0, ErrHLLCorrupt
		}
	}
	return hllEstimate(&histo), nil
}

// HLLCountRegisters estimates the cardinality of registers of one byte
// each (PFCOUNT of several keys).
func HLLCountRegisters(regs []uint8) uint64 {
	var histo [64]int
	for _, v := range regs {
		histo[v&63]++
	}
	return hllEstimate(&histo)
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if prev == z {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		d := 1 - x
		z -= d * d * y // pow(1-x, 2), which compilers turn into this product
		if prev == z {
			return z / 3
		}
	}
}

// hllEstimate is Redis's estimator on a register histogram.
func hllEstimate(histo *[64]int) uint64 {
	m := float64(hllRegisters)
	z := m * hllTau((m-float64(histo[hllQ+1]))/m)
	for j := hllQ; j >= 1; j-- {
		z += float64(histo[j])
		z *= 0.5
	}
	z += m * hllSigma(float64(histo[0])/m)
	return uint64(math.Round(hllAlphaInf * m * m / z))
}

// HLLRegisters returns the 16384 registers of a HyperLogLog.
func HLLRegisters(b []byte) ([]uint8, error) {
	regs := make([]uint8, hllRegisters)
	if err := HLLMergeInto(regs, b); err != nil {
		return nil, err
	}
	return regs, nil
}

// HLLDecodeSparse renders the opcodes of a sparse HyperLogLog as PFDEBUG
// DECODE does ("z:len", "Z:len", "v:value,len").
func HLLDecodeSparse(b []byte) string {
	var out []string
	p := b[hllHdrSize:]
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case sparseIsZero(c):
			out = append(out, "z:"+strconv.Itoa(sparseZeroLen(c)))
			i++
		case sparseIsXZero(c):
			out = append(out, "Z:"+strconv.Itoa(sparseXZeroLen(c, next(p, i))))
			i += 2
		default:
			out = append(out, "v:"+strconv.Itoa(sparseValValue(c))+","+strconv.Itoa(sparseValLen(c)))
			i++
		}
	}
	return strings.Join(out, " ")
}

// HLLSelfTestRegisters sets the registers of a dense representation to
// random values many times and reads them back, as the first part of
// Redis's PFSELFTEST; it returns a description of the first mismatch.
func HLLSelfTestRegisters(rnd func() uint32) string {
	regs := make([]byte, HLLDenseSize-hllHdrSize)
	want := make([]uint8, hllRegisters)
	for cycle := 0; cycle < 100; cycle++ {
		for i := range want {
			want[i] = uint8(rnd() & hllRegMax)
			denseSet(regs, i, want[i])
		}
		for i, w := range want {
			if got := denseGet(regs, i); got != w {
				return "Register " + strconv.Itoa(i) + " should be " + strconv.Itoa(int(w)) + " but is " + strconv.Itoa(int(got))
			}
		}
	}
	return ""
}
