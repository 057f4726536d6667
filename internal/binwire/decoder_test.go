package binwire

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestDecoder(t *testing.T) {
	var ok []byte
	ok = binary.AppendUvarint(ok, 300)
	ok = binary.AppendVarint(ok, -7)
	ok = append(ok, 9)
	ok = binary.AppendUvarint(ok, 3)
	ok = append(ok, "abc"...)
	ok = binary.AppendUvarint(ok, 16383)
	d := &Decoder{B: ok}
	if u, v, b, s, sl := d.Uvarint("u"), d.Varint("v"), d.Byte("b"), string(d.Bytes(d.Uvarint("n"), "s")), d.Slot("slot", 16384); d.Err != nil ||
		u != 300 || v != -7 || b != 9 || s != "abc" || sl != 16383 || d.Left() != 0 {
		t.Fatalf("got %d %d %d %q %d left %d err %v", u, v, b, s, sl, d.Left(), d.Err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		read func(d *Decoder)
		want string
	}{
		{"empty varint", nil, func(d *Decoder) { d.Uvarint("count") }, "count: truncated or overlong varint"},
		{"overlong varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(d *Decoder) { d.Varint("v") }, "v: truncated or overlong varint"},
		{"no byte", nil, func(d *Decoder) { d.Byte("kind") }, "kind: truncated"},
		{"bytes past the end", []byte{1, 2}, func(d *Decoder) { d.Bytes(3, "name") }, "name: 3 bytes wanted, 2 left"},
		{"slot too high", binary.AppendUvarint(nil, 16384), func(d *Decoder) { d.Slot("slot", 16384) }, "slot 16384: slots are below 16384"},
		{"first error sticks", nil, func(d *Decoder) { d.Byte("first"); d.Fail("second") }, "first: truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Decoder{B: tc.b}
			tc.read(d)
			if d.Err == nil || !strings.Contains(d.Err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", d.Err, tc.want)
			}
			if d.Uvarint("after") != 0 || d.Bytes(0, "after") != nil {
				t.Fatal("a read after an error gave a value")
			}
		})
	}
}
