package structs

import (
	"encoding/hex"
	"math/rand/v2"
)

// Uint64Source yields random 64-bit values; *rand.Rand is one, so a seeded
// source makes IDs reproducible in tests and benchmarks.
type Uint64Source interface{ Uint64() uint64 }

// globalSource draws from math/rand/v2's package functions: ChaCha8 seeded
// by the runtime from the operating system, unpredictable across processes.
type globalSource struct{}

func (globalSource) Uint64() uint64 { return rand.Uint64() }

// NewUUID returns a random version-4 UUID. It is the one maker of IDs for
// nodes, servers, jobs and allocations; schedulers that must be
// reproducible under a seed call NewUUIDFrom.
func NewUUID() string { return NewUUIDFrom(globalSource{}) }

// NewUUIDFrom returns a version-4 UUID drawn from src.
func NewUUIDFrom(src Uint64Source) string {
	var s [36]byte
	FormatRandomUUID(&s, src)
	return string(s[:])
}

// FormatRandomUUID draws a version-4 UUID from src into dst without
// allocating (the scheduler formats one per placement).
func FormatRandomUUID(dst *[36]byte, src Uint64Source) {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := src.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	EncodeUUID(dst, &b)
}

// EncodeUUID writes u in the canonical lower-case form
// (8-4-4-4-12 hex digits) into dst, without allocating.
func EncodeUUID(dst *[36]byte, u *[16]byte) {
	hex.Encode(dst[0:8], u[0:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], u[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], u[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], u[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:36], u[10:16])
}
