package script

import (
	"errors"
	"math"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// structCall calls a struct function with args; a Lua error is returned,
// a Go panic (an index out of range...) fails the test.
func structCall(t *testing.T, L *lua.LState, fn lua.LGFunction, args ...lua.LValue) ([]lua.LValue, error) {
	t.Helper()
	top := L.GetTop()
	L.Push(L.NewFunction(fn))
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), lua.MultRet, nil)
	if err != nil {
		var ae *lua.ApiError
		if errors.As(err, &ae) && ae.Type == lua.ApiErrorPanic {
			t.Fatalf("Go panic for %q: %v", args, err)
		}
		L.SetTop(top)
		return nil, err
	}
	out := make([]lua.LValue, 0, L.GetTop()-top)
	for i := top + 1; i <= L.GetTop(); i++ {
		out = append(out, L.Get(i))
	}
	L.SetTop(top)
	return out, nil
}

// FuzzStruct: struct.pack, struct.unpack and struct.size never panic on
// any format and arguments, and unpack(pack(x)) gives x back (with the
// position after the data) for formats built of items that round-trip.
func FuzzStruct(f *testing.F) {
	for _, s := range []struct{ format, data string }{
		{"<i4", "\x01\x02\x03\x04"}, {">!4bxi", "abcdefgh"}, {"c0", "abc"}, {"bc0", "\x03abc"},
		{"s", "ab\x00"}, {"i17", ""}, {"c2000000000", ""}, {"!3i", ""}, {"i0i0", ""},
		{"fd", "0123456789ab"}, {"!16hI3", "\xff\xff\xff\xff\xff\xff\xff\xff"}, {"i99999999999", ""},
	} {
		f.Add(s.format, []byte(s.data), int64(1))
	}
	f.Fuzz(func(t *testing.T, format string, data []byte, pos int64) {
		if len(format) > 256 || len(data) > 4096 {
			return
		}
		L := lua.NewState(lua.Options{SkipOpenLibs: true})
		defer L.Close()
		// any format, with arguments made of data: numbers and strings
		args := []lua.LValue{lua.LString(format)}
		for i := 0; i+1 < len(data) && len(args) < 32; i += 2 {
			if data[i]&1 == 0 {
				args = append(args, lua.LNumber(int8(data[i+1])))
			} else {
				args = append(args, lua.LString(data[i+1:min(len(data), i+1+int(data[i]>>4))]))
			}
		}
		if out, err := structCall(t, L, structPack, args...); err == nil && len(out) != 1 {
			t.Fatalf("pack %q: %d results", format, len(out))
		}
		structCall(t, L, structSize, lua.LString(format))
		structCall(t, L, structUnpack, lua.LString(format), lua.LString(data), lua.LNumber(pos))
		structCall(t, L, structUnpack, lua.LString(format), lua.LString(data))

		// a format of round-tripping items chosen by data, and values
		rt := ""
		var vals []lua.LValue
		next := func(i *int) byte {
			if *i >= len(data) {
				return 0
			}
			*i++
			return data[*i-1]
		}
		for i := 0; i < len(data) && len(vals) < 64; {
			c := next(&i)
			v := next(&i)
			switch c % 12 {
			case 0:
				rt += "<"
			case 1:
				rt += ">"
			case 2:
				rt += "!" + string("1248"[v%4])
			case 3:
				rt += "b"
				vals = append(vals, lua.LNumber(int8(v)))
			case 4:
				rt += "H"
				vals = append(vals, lua.LNumber(uint16(v)<<8|uint16(next(&i))))
			case 5:
				n := int(v%7) + 1
				rt += "i" + string(rune('0'+n))
				x := int64(int8(next(&i))) << (8 * (n - 1))
				vals = append(vals, lua.LNumber(x))
			case 6:
				rt += "l"
				vals = append(vals, lua.LNumber(int64(int32(uint32(v)<<24|uint32(next(&i))))*1e6))
			case 7:
				rt += "d"
				vals = append(vals, lua.LNumber(float64(int8(v))/7))
			case 8:
				rt += "f"
				vals = append(vals, lua.LNumber(float32(int8(v))/8))
			case 9:
				n := int(v % 5)
				rt += "c" + string(rune('1'+n))
				vals = append(vals, lua.LString(string(data[:min(len(data), n+1)])+"xxxxx"[:n+1-min(len(data), n+1)]))
			case 10:
				b := []byte{}
				for _, x := range data[:min(len(data), int(v%8))] {
					if x != 0 {
						b = append(b, x)
					}
				}
				rt += "s"
				vals = append(vals, lua.LString(b))
			case 11:
				rt += "x"
			}
		}
		packed, err := structCall(t, L, structPack, append([]lua.LValue{lua.LString(rt)}, vals...)...)
		if err != nil {
			t.Fatalf("pack %q %v: %v", rt, vals, err)
		}
		p := packed[0].(lua.LString)
		got, err := structCall(t, L, structUnpack, lua.LString(rt), p)
		if err != nil {
			t.Fatalf("unpack %q %q: %v", rt, p, err)
		}
		if len(got) != len(vals)+1 {
			t.Fatalf("unpack %q: %d values, want %d", rt, len(got)-1, len(vals))
		}
		for i, v := range vals {
			if got[i] != v && (!isNaN(got[i]) || !isNaN(v)) {
				t.Fatalf("format %q item %d: got %v, want %v", rt, i, got[i], v)
			}
		}
		if got[len(vals)] != lua.LNumber(len(p)+1) {
			t.Fatalf("format %q: next position %v, want %d", rt, got[len(vals)], len(p)+1)
		}
		if !containsS(rt) {
			if n, err := structCall(t, L, structSize, lua.LString(rt)); err != nil || n[0] != lua.LNumber(len(p)) {
				t.Fatalf("size %q = %v (%v), packed %d bytes", rt, n, err, len(p))
			}
		}
	})
}

func isNaN(v lua.LValue) bool {
	n, ok := v.(lua.LNumber)
	return ok && math.IsNaN(float64(n))
}

func containsS(format string) bool {
	for i := 0; i < len(format); i++ {
		if format[i] == 's' {
			return true
		}
	}
	return false
}

// FuzzStringFormat: string.format never panics, whatever the format and
// its numbers and strings.
func FuzzStringFormat(f *testing.F) {
	for _, s := range []string{"%d", "%5.2f|%-#10x", "%q%s%c", "%99.99f", "%-+ #0d", "%", "%.0e%G%u%o", "%123d"} {
		f.Add(s, -1.5, "a\x00b")
	}
	f.Fuzz(func(t *testing.T, format string, n float64, s string) {
		if len(format) > 256 {
			return
		}
		L := lua.NewState(lua.Options{SkipOpenLibs: true})
		defer L.Close()
		structCall(t, L, strFormat, lua.LString(format), lua.LNumber(n), lua.LString(s), lua.LNumber(n), lua.LString(s))
	})
}
