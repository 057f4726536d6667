package kv

import (
	"errors"
	"testing"
)

// FuzzParseDump: any payload is refused with an error or decodes into a
// value whose own dump decodes again; nothing panics or allocates beyond
// the input's size.
func FuzzParseDump(f *testing.F) {
	l := &list{}
	l.pushBack([]byte("a"))
	l.pushBack([]byte(""))
	s := newSet()
	s.add([]byte("x"))
	h := newHash()
	h.set([]byte("f"), []byte("v"))
	z := newZSet()
	z.add("m", 1.5)
	z.add("n", -2)
	for _, e := range []*entry{newStringEntry([]byte("hello"), 0), newStringEntry([]byte{}, 0),
		newObjectEntry(l), newObjectEntry(s), newObjectEntry(h), newObjectEntry(z)} {
		f.Add(dumpEntry(e))
	}
	f.Add([]byte("\x00\x03bar\n\x00\xb5\x90\x17\x8b\x1c\x8a\x8a\xf7"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := parseDump(p)
		if err != nil {
			if !errors.Is(err, errDumpChecksum) && !errors.Is(err, errDumpFormat) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again := dumpEntry(e)
		e2, err := parseDump(again)
		if err != nil {
			t.Fatalf("re-dump of a parsed payload does not parse: %v", err)
		}
		if e2.kind() != e.kind() {
			t.Fatalf("kind %s became %s", e.kind(), e2.kind())
		}
	})
}

// FuzzParseDumpBody checksums the fuzzed body itself, so the fuzzer
// reaches the decoder instead of stopping at the checksum.
func FuzzParseDumpBody(f *testing.F) {
	f.Add([]byte{dumpString, 3, 'a', 'b', 'c'})
	f.Add([]byte{dumpList, 2, 1, 'a', 0})
	f.Add([]byte{dumpZSet, 1, 1, 'm', 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}) // NaN
	f.Add([]byte{dumpHash, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, body []byte) {
		p := sealDump(body)
		e, err := parseDump(p)
		if err != nil {
			if !errors.Is(err, errDumpFormat) && !errors.Is(err, errDumpChecksum) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, err := parseDump(dumpEntry(e)); err != nil {
			t.Fatalf("re-dump does not parse: %v", err)
		}
	})
}
