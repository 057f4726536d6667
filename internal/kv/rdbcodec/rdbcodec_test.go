package rdbcodec

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestCRC64(t *testing.T) {
	// the check value of crc64.c's own test
	if got := CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("CRC64 = %#x", got)
	}
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}

var allInts = []string{"0", "12", "13", "-1", "127", "-128", "128", "32767", "-32768", "40000",
	"8388607", "-8388608", "8388608", "2147483647", "-2147483648", "2147483648", "9223372036854775807",
	"-9223372036854775808", "007", "-0", "", "a", strings.Repeat("s", 63), strings.Repeat("m", 64),
	strings.Repeat("l", 16383), strings.Repeat("h", 16384)}

func TestDecode(t *testing.T) {
	lzf := cat(rdbLen(4), []byte{0xC3}, rdbLen(6), rdbLen(9), []byte{2, 'a', 'b', 'c', 0x80, 2}) // "abc" then 6 from 3 back
	tests := []struct {
		name   string
		t      byte
		value  []byte
		kind   Kind
		elems  []string
		scores []float64
	}{
		{"string", typeString, rdbStr("hello"), KindString, []string{"hello"}, nil},
		{"string-int8", typeString, []byte{0xC0, 0xF9}, KindString, []string{"-7"}, nil},
		{"string-int16", typeString, []byte{0xC1, 0x30, 0x75}, KindString, []string{"30000"}, nil},
		{"string-int32", typeString, []byte{0xC2, 0x00, 0x6C, 0xCA, 0x88}, KindString, []string{"-2000000000"}, nil},
		{"string-lzf", typeString, lzf[1:], KindString, []string{"abcabcabc"}, nil},
		{"string-64bit-len", typeString, cat([]byte{0x81, 0, 0, 0, 0, 0, 0, 0, 2}, []byte("hi")), KindString, []string{"hi"}, nil},
		{"list-old", typeList, cat(rdbLen(2), rdbStr("a"), rdbStr("b")), KindList, []string{"a", "b"}, nil},
		{"list-ziplist", typeListZiplist, rdbStr(string(ziplist(allInts...))), KindList, allInts, nil},
		{"list-ziplist-big-prevlen", typeListZiplist, rdbStr(string(ziplist(strings.Repeat("p", 300), "x"))), KindList,
			[]string{strings.Repeat("p", 300), "x"}, nil},
		{"list-quicklist", typeListQuicklist, cat(rdbLen(3), rdbStr(string(ziplist("a", "1"))), rdbStr(string(ziplist())),
			rdbStr(string(ziplist("b")))), KindList, []string{"a", "1", "b"}, nil},
		{"list-quicklist2", typeListQuicklist2, cat(rdbLen(2), rdbLen(2), rdbStr(string(listpack(allInts...))),
			rdbLen(1), rdbStr("plain")), KindList, append(append([]string{}, allInts...), "plain"), nil},
		{"set-old", typeSet, cat(rdbLen(2), rdbStr("a"), rdbStr("b")), KindSet, []string{"a", "b"}, nil},
		{"set-intset", typeSetIntset, rdbStr("\x02\x00\x00\x00\x03\x00\x00\x00\xfe\xff\x05\x00\x00\x01"), KindSet,
			[]string{"-2", "5", "256"}, nil},
		{"set-listpack", typeSetListpack, rdbStr(string(listpack("a", "5", "-70000"))), KindSet, []string{"a", "5", "-70000"}, nil},
		{"hash-old", typeHash, cat(rdbLen(1), rdbStr("f"), rdbStr("v")), KindHash, []string{"f", "v"}, nil},
		{"hash-zipmap", typeHashZipmap, rdbStr(string(zipmap("f", "v", "g", "1"))), KindHash, []string{"f", "v", "g", "1"}, nil},
		{"hash-ziplist", typeHashZiplist, rdbStr(string(ziplist("z", "1", "a", "2"))), KindHash, []string{"z", "1", "a", "2"}, nil},
		{"hash-listpack", typeHashListpack, rdbStr(string(listpack("z", "1", "a", "-5000"))), KindHash, []string{"z", "1", "a", "-5000"}, nil},
		{"zset-old", typeZSet, cat(rdbLen(3), rdbStr("a"), []byte{3}, []byte("1.5"), rdbStr("b"), []byte{254}, rdbStr("c"), []byte{255}),
			KindZSet, []string{"a", "b", "c"}, []float64{1.5, math.Inf(1), math.Inf(-1)}},
		{"zset-2", typeZSet2, cat(rdbLen(1), rdbStr("a"), []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x3f}), KindZSet, []string{"a"}, []float64{1.5}},
		{"zset-ziplist", typeZSetZiplist, rdbStr(string(ziplist("a", "3", "b", "inf", "c", "-2.5e3"))), KindZSet,
			[]string{"a", "b", "c"}, []float64{3, math.Inf(1), -2500}},
		{"zset-listpack", typeZSetListpack, rdbStr(string(listpack("a", "3", "b", "1e400"))), KindZSet,
			[]string{"a", "b"}, []float64{3, math.Inf(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Decode(seal(tc.t, tc.value, 10))
			if err != nil {
				t.Fatal(err)
			}
			if o.Kind != tc.kind {
				t.Fatalf("kind %s", o.Kind)
			}
			got := strs(o.Elems)
			if o.Kind == KindString {
				got = []string{string(o.Str)}
			}
			if !reflect.DeepEqual(got, tc.elems) {
				t.Errorf("elements %.300q, want %.300q", got, tc.elems)
			}
			if !reflect.DeepEqual(o.Scores, tc.scores) {
				t.Errorf("scores %v, want %v", o.Scores, tc.scores)
			}
		})
	}
}

func TestDecodeStream(t *testing.T) {
	for _, typ := range []byte{typeStreamListpacks, typeStreamListpack2, typeStreamListpack3} {
		o, err := Decode(seal(typ, streamValue(typ), 10))
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		s := o.Stream
		want := []StreamEntry{{ID{5, 0}, [][]byte{[]byte("a"), []byte("1"), []byte("b"), []byte("2")}},
			{ID{6, 0}, [][]byte{[]byte("x"), []byte("y")}}}
		if !reflect.DeepEqual(s.Entries, want) {
			t.Errorf("type %d: entries %v", typ, s.Entries)
		}
		active := int64(3000)
		wantS := Stream{Entries: s.Entries, LastID: ID{6, 0}, EntriesAdded: 2, Legacy: true}
		wantG := Group{Name: []byte("g"), LastID: ID{6, 0}}
		if typ != typeStreamListpacks {
			wantS.Legacy, wantS.EntriesAdded, wantS.MaxDeletedID = false, 3, ID{5, 1}
			wantG.EntriesRead = 3
		}
		if typ == typeStreamListpack3 {
			active = 2500
		}
		wantG.Pending = []Pending{{ID{5, 0}, 1000, 1, 0}, {ID{6, 0}, 2000, 3, 0}}
		wantG.Consumers = []Consumer{{[]byte("alice"), 3000, active}}
		wantS.Groups = []Group{wantG}
		if !reflect.DeepEqual(*s, wantS) {
			t.Errorf("type %d:\n got %+v\nwant %+v", typ, *s, wantS)
		}
	}
}

// TestDecodeRefuses: every malformed payload is an error of the right
// kind, whatever part is wrong.
func TestDecodeRefuses(t *testing.T) {
	good := seal(typeString, rdbStr("x"), 10)
	flip := append([]byte(nil), good...)
	flip[2] ^= 1
	badBacklen := listpack("a", "b")
	badBacklen[8] = 5
	zlPrev := ziplist("a", "b")
	zlPrev[13] = 9 // the second entry's previous length
	zlTail := ziplist("a", "b")
	zlTail[4] = 11
	stream := streamValue(typeStreamListpack2)
	orphan := streamValue(typeStreamListpack2)
	orphan = orphan[:len(orphan)-len(rdbLen(2))-32]
	orphan = cat(orphan, rdbLen(1), rawIDBytes(5, 0)) // 6-0 left without a consumer
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"checksum", flip, ErrChecksum},
		{"version", seal(typeString, rdbStr("x"), 12), ErrChecksum},
		{"short", []byte{1, 2, 3}, ErrChecksum},
		{"trailing", seal(typeString, cat(rdbStr("x"), []byte{0}), 10), ErrFormat},
		// with an initial value of 0, a leading zero byte (the type of a
		// string) does not change the CRC: this footer is valid for nothing
		{"no-type", seal(typeString, nil, 10)[1:], ErrFormat},
		{"module", seal(7, rdbStr("x"), 10), ErrFormat},
		{"unknown-type", seal(22, rdbStr("x"), 10), ErrFormat},
		{"truncated-string", seal(typeString, rdbLen(5), 10), ErrFormat},
		{"huge-count", seal(typeList, cat([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, rdbStr("a")), 10), ErrFormat},
		{"count-past-payload", seal(typeList, cat(rdbLen(3), rdbStr("a")), 10), ErrFormat},
		{"empty-list", seal(typeList, rdbLen(0), 10), ErrFormat},
		{"empty-ziplist", seal(typeListZiplist, rdbStr(string(ziplist())), 10), ErrFormat},
		{"empty-quicklist", seal(typeListQuicklist2, cat(rdbLen(1), rdbLen(2), rdbStr(string(listpack()))), 10), ErrFormat},
		{"quicklist-container", seal(typeListQuicklist2, cat(rdbLen(1), rdbLen(3), rdbStr("x")), 10), ErrFormat},
		{"duplicate-member", seal(typeSet, cat(rdbLen(2), rdbStr("a"), rdbStr("a")), 10), ErrFormat},
		{"duplicate-field", seal(typeHashListpack, rdbStr(string(listpack("f", "1", "f", "2"))), 10), ErrFormat},
		{"odd-hash", seal(typeHashListpack, rdbStr(string(listpack("f", "1", "g"))), 10), ErrFormat},
		{"nan-score", seal(typeZSet, cat(rdbLen(1), rdbStr("a"), []byte{253}), 10), ErrFormat},
		{"nan-score-2", seal(typeZSet2, cat(rdbLen(1), rdbStr("a"), []byte{1, 0, 0, 0, 0, 0, 0xf8, 0x7f}), 10), ErrFormat},
		{"bad-score", seal(typeZSetListpack, rdbStr(string(listpack("a", "x1"))), 10), ErrFormat},
		{"listpack-backlen", seal(typeListQuicklist2, cat(rdbLen(1), rdbLen(2), rdbStr(string(badBacklen))), 10), ErrFormat},
		{"listpack-size", seal(typeHashListpack, rdbStr(string(listpack("f", "1"))+"\x00"), 10), ErrFormat},
		{"ziplist-prevlen", seal(typeListZiplist, rdbStr(string(zlPrev)), 10), ErrFormat},
		{"ziplist-tail", seal(typeListZiplist, rdbStr(string(zlTail)), 10), ErrFormat},
		{"intset-order", seal(typeSetIntset, rdbStr("\x02\x00\x00\x00\x02\x00\x00\x00\x05\x00\x01\x00"), 10), ErrFormat},
		{"intset-size", seal(typeSetIntset, rdbStr("\x03\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00"), 10), ErrFormat},
		{"lzf-backref", seal(typeString, cat([]byte{0xC3}, rdbLen(3), rdbLen(5), []byte{0, 'a', 0x20, 5}), 10), ErrFormat},
		{"lzf-length", seal(typeString, cat([]byte{0xC3}, rdbLen(2), rdbLen(5), []byte{0, 'a'}), 10), ErrFormat},
		{"lzf-bomb", seal(typeString, cat([]byte{0xC3}, rdbLen(2), []byte{0x80, 0x40, 0, 0, 0}, []byte{0, 'a'}), 10), ErrFormat},
		{"stream-truncated", seal(typeStreamListpack2, stream[:len(stream)-1], 10), ErrFormat},
		{"stream-orphan-pending", seal(typeStreamListpack2, orphan, 10), ErrFormat},
		{"stream-node-key", seal(typeStreamListpack2, cat(rdbLen(1), rdbStr("short"), stream[len(rdbLen(1))+17:]), 10), ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Decode(tc.payload)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v (%+v), want %v", err, o, tc.want)
			}
		})
	}
}
