// Package binwire reads the compact binary messages peers exchange (the
// cluster bus's and the execution layer's): varints and byte strings
// checked against what is left, the first error sticking so that a
// decoder reads a whole message and checks one error at the end.
package binwire

import (
	"encoding/binary"
	"fmt"
)

// Decoder reads B from Off. After the first error (Err) every read gives
// a zero value.
type Decoder struct {
	B   []byte
	Off int
	Err error
}

// Fail records an error unless one is recorded already.
func (d *Decoder) Fail(format string, args ...any) {
	if d.Err == nil {
		d.Err = fmt.Errorf(format, args...)
	}
}

// Left is the number of bytes not read yet.
func (d *Decoder) Left() int { return len(d.B) - d.Off }

// Uvarint reads an unsigned varint; what names it in an error.
func (d *Decoder) Uvarint(what string) uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B[d.Off:])
	if n <= 0 {
		d.Fail("%s: truncated or overlong varint", what)
		return 0
	}
	d.Off += n
	return v
}

// Varint reads a signed (zig-zag) varint.
func (d *Decoder) Varint(what string) int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B[d.Off:])
	if n <= 0 {
		d.Fail("%s: truncated or overlong varint", what)
		return 0
	}
	d.Off += n
	return v
}

// Byte reads one byte.
func (d *Decoder) Byte(what string) byte {
	if d.Err != nil {
		return 0
	}
	if d.Off >= len(d.B) {
		d.Fail("%s: truncated", what)
		return 0
	}
	d.Off++
	return d.B[d.Off-1]
}

// Bytes reads n bytes, a slice of B (not a copy).
func (d *Decoder) Bytes(n uint64, what string) []byte {
	if d.Err != nil {
		return nil
	}
	if n > uint64(d.Left()) {
		d.Fail("%s: %d bytes wanted, %d left", what, n, d.Left())
		return nil
	}
	b := d.B[d.Off : d.Off+int(n)]
	d.Off += int(n)
	return b
}

// Slot reads a hash slot: below numSlots.
func (d *Decoder) Slot(what string, numSlots uint64) uint16 {
	v := d.Uvarint(what)
	if d.Err == nil && v >= numSlots {
		d.Fail("%s %d: slots are below %d", what, v, numSlots)
		return 0
	}
	return uint16(v)
}
