package script

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// cjson is the subset of lua-cjson Redis scripts use: encode, decode,
// null and the settings (encode_max_depth, decode_max_depth,
// encode_invalid_numbers, decode_invalid_numbers, encode_keep_buffer,
// encode_number_precision, encode_sparse_array), with lua-cjson's output:
// numbers as "%.14g", "/" escaped, empty tables as objects, tables whose
// keys are 1..n as arrays.
type cjson struct {
	encodeDepth, decodeDepth int
	encodeInvalid            bool
	decodeInvalid            bool
	precision                int
	sparseConvert            bool
	sparseRatio, sparseSafe  int
	null                     *lua.LUserData
}

func cjsonLib(L *lua.LState) *lua.LTable {
	cj := &cjson{encodeDepth: 1000, decodeDepth: 1000, decodeInvalid: true, precision: 14, sparseRatio: 2, sparseSafe: 10}
	cj.null = L.NewUserData()
	t := L.CreateTable(0, 0) // its map is made at the first name, for 32
	intSetting := func(p *int, lo, hi int) lua.LGFunction {
		return func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				v := checkInt(L, 1)
				if v < lo || v > hi {
					L.ArgError(1, "expected integer between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
				}
				*p = v
			}
			L.Push(lua.LNumber(*p))
			return 1
		}
	}
	boolSetting := func(p *bool) lua.LGFunction {
		return func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				switch v := L.Get(1).(type) {
				case lua.LBool:
					*p = bool(v)
				case lua.LString:
					*p = v == "on" || v == "true"
				default:
					*p = lua.LVAsBool(v)
				}
			}
			L.Push(lua.LBool(*p))
			return 1
		}
	}
	fns := map[string]lua.LGFunction{
		"encode":                  cj.encode,
		"decode":                  cj.decode,
		"encode_max_depth":        intSetting(&cj.encodeDepth, 1, math.MaxInt32),
		"decode_max_depth":        intSetting(&cj.decodeDepth, 1, math.MaxInt32),
		"encode_number_precision": intSetting(&cj.precision, 1, 14),
		"encode_invalid_numbers":  boolSetting(&cj.encodeInvalid),
		"decode_invalid_numbers":  boolSetting(&cj.decodeInvalid),
		"encode_keep_buffer":      func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"encode_sparse_array": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				cj.sparseConvert = lua.LVAsBool(L.Get(1))
			}
			if L.GetTop() >= 2 {
				cj.sparseRatio = checkInt(L, 2)
			}
			if L.GetTop() >= 3 {
				cj.sparseSafe = checkInt(L, 3)
			}
			L.Push(lua.LBool(cj.sparseConvert))
			L.Push(lua.LNumber(cj.sparseRatio))
			L.Push(lua.LNumber(cj.sparseSafe))
			return 3
		},
	}
	for name, fn := range fns {
		t.RawSetString(name, L.NewFunction(fn))
	}
	t.RawSetString("null", cj.null)
	t.RawSetString("_NAME", lua.LString("cjson"))
	t.RawSetString("_VERSION", lua.LString("2.1.0"))
	return t
}

func (cj *cjson) encode(L *lua.LState) int {
	if L.GetTop() != 1 {
		L.ArgError(1, "expected 1 argument")
	}
	b, err := cj.appendValue(nil, L.Get(1), 0)
	if err != "" {
		if strings.HasPrefix(err, ",") { // lua-cjson's "Cannot serialise, excessive nesting (n)"
			L.RaiseError("Cannot serialise%s", err)
		}
		L.RaiseError("Cannot serialise %s", err)
	}
	L.Push(lua.LString(b))
	return 1
}

func (cj *cjson) appendNumber(b []byte, f float64) ([]byte, string) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		if !cj.encodeInvalid {
			return nil, "number: must not be NaN or Inf"
		}
		switch {
		case math.IsNaN(f):
			return append(b, "nan"...), ""
		case f > 0:
			return append(b, "inf"...), ""
		}
		return append(b, "-inf"...), ""
	}
	return append(b, formatG(f, cj.precision)...), ""
}

// formatG is C's "%.<prec>g".
func formatG(f float64, prec int) string {
	s := strconv.FormatFloat(f, 'g', prec, 64)
	// C prints exponents with at least two digits
	for i := 0; i < len(s); i++ {
		if s[i] == 'e' && i+2 < len(s) && len(s)-(i+2) == 1 {
			return s[:i+2] + "0" + s[i+2:]
		}
	}
	return s
}

func (cj *cjson) appendValue(b []byte, v lua.LValue, depth int) ([]byte, string) {
	switch x := v.(type) {
	case lua.LString:
		return appendJSONString(b, string(x)), ""
	case lua.LNumber:
		return cj.appendNumber(b, float64(x))
	case lua.LBool:
		if x {
			return append(b, "true"...), ""
		}
		return append(b, "false"...), ""
	case *lua.LNilType:
		return append(b, "null"...), ""
	case *lua.LUserData:
		if x == cj.null {
			return append(b, "null"...), ""
		}
	case *lua.LTable:
		depth++
		if depth > cj.encodeDepth {
			return nil, ", excessive nesting (" + strconv.Itoa(depth) + ")"
		}
		n, isArray, err := cj.arrayLen(x)
		if err != "" {
			return nil, err
		}
		if isArray {
			b = append(b, '[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					b = append(b, ',')
				}
				var e string
				if b, e = cj.appendValue(b, x.RawGetInt(i), depth); e != "" {
					return nil, e
				}
			}
			return append(b, ']'), ""
		}
		b = append(b, '{')
		first := true
		var bad string
		forEach(x, func(k, val lua.LValue) {
			if bad != "" {
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			switch kk := k.(type) {
			case lua.LString:
				b = appendJSONString(b, string(kk))
			case lua.LNumber:
				b = append(b, '"')
				b = append(b, formatG(float64(kk), cj.precision)...)
				b = append(b, '"')
			default:
				bad = k.Type().String() + ": table key must be a number or string"
				return
			}
			b = append(b, ':')
			var e string
			if b, e = cj.appendValue(b, val, depth); e != "" {
				bad = e
			}
		})
		if bad != "" {
			return nil, bad
		}
		return append(b, '}'), ""
	}
	return nil, v.Type().String() + ": type not supported"
}

// arrayLen is lua-cjson's lua_array_length: the largest key when every
// key is a positive integer (an array), with its sparse-array rule.
func (cj *cjson) arrayLen(t *lua.LTable) (int, bool, string) {
	maxKey, items := 0, 0
	isArray := true
	forEach(t, func(k, _ lua.LValue) {
		n, ok := k.(lua.LNumber)
		if !ok || float64(n) < 1 || float64(n) != math.Floor(float64(n)) {
			isArray = false
			return
		}
		if int(n) > maxKey {
			maxKey = int(n)
		}
		items++
	})
	if !isArray || items == 0 {
		return 0, false, ""
	}
	if cj.sparseRatio > 0 && maxKey > items*cj.sparseRatio && maxKey > cj.sparseSafe {
		if !cj.sparseConvert {
			return 0, false, "table: excessively sparse array"
		}
		return 0, false, ""
	}
	return maxKey, true, ""
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '/':
			b = append(b, '\\', '/')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 || c == 0x7f {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// decode parses JSON into Lua values: objects and arrays to tables, null
// to cjson.null.
func (cj *cjson) decode(L *lua.LState) int {
	s := L.CheckString(1)
	d := jsonDecoder{L: L, s: s, cj: cj}
	d.skip()
	v := d.value(0)
	d.skip()
	if d.err == "" && d.i < len(d.s) {
		d.fail("the end")
	}
	if d.err != "" {
		L.RaiseError("%s", d.err)
	}
	L.Push(v)
	return 1
}

type jsonDecoder struct {
	L   *lua.LState
	s   string
	i   int
	err string
	cj  *cjson
}

// fail records lua-cjson's parse error: what was expected, the token
// found at d.i (named as lua-cjson names its token types) and where.
func (d *jsonDecoder) fail(want string) {
	d.failFound(want, d.token())
}

func (d *jsonDecoder) failFound(want, found string) {
	if d.err == "" {
		d.err = "Expected " + want + " but found " + found + " at character " + strconv.Itoa(d.i+1)
	}
}

// token names the token at d.i as lua-cjson's json_token_type_name.
func (d *jsonDecoder) token() string {
	if d.i >= len(d.s) {
		return "T_END"
	}
	rest := d.s[d.i:]
	switch c := rest[0]; {
	case c == '{':
		return "T_OBJ_BEGIN"
	case c == '}':
		return "T_OBJ_END"
	case c == '[':
		return "T_ARR_BEGIN"
	case c == ']':
		return "T_ARR_END"
	case c == ':':
		return "T_COLON"
	case c == ',':
		return "T_COMMA"
	case c == '"':
		return "T_STRING"
	case c == '-' || isDigit(c):
		return "T_NUMBER"
	case strings.HasPrefix(rest, "true") || strings.HasPrefix(rest, "false"):
		return "T_BOOLEAN"
	case strings.HasPrefix(rest, "null"):
		return "T_NULL"
	}
	return "invalid token"
}

func (d *jsonDecoder) skip() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) lua.LValue {
	if d.err != "" {
		return lua.LNil
	}
	if d.i >= len(d.s) {
		d.fail("value")
		return lua.LNil
	}
	switch c := d.s[d.i]; {
	case c == '{' || c == '[':
		depth++
		if depth > d.cj.decodeDepth {
			d.err = "Found too many nested data structures (" + strconv.Itoa(depth) + ") at character " + strconv.Itoa(d.i+1)
			return lua.LNil
		}
		d.i++
		t := d.L.NewTable()
		closeCh := byte('}')
		if c == '[' {
			closeCh = ']'
		}
		d.skip()
		if d.i < len(d.s) && d.s[d.i] == closeCh {
			d.i++
			return t
		}
		for n := 1; ; n++ {
			d.skip()
			if c == '{' {
				if d.i >= len(d.s) || d.s[d.i] != '"' {
					d.fail("object key string")
					return lua.LNil
				}
				k := d.str("object key string")
				d.skip()
				if d.i >= len(d.s) || d.s[d.i] != ':' {
					d.fail("colon")
					return lua.LNil
				}
				d.i++
				d.skip()
				v := d.value(depth)
				t.RawSetString(k, v)
			} else {
				t.RawSetInt(n, d.value(depth))
			}
			if d.err != "" {
				return lua.LNil
			}
			d.skip()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == closeCh {
				d.i++
				return t
			}
			d.fail("comma or " + map[byte]string{'}': "object end", ']': "array end"}[closeCh])
			return lua.LNil
		}
	case c == '"':
		return lua.LString(d.str("value"))
	case c == 't' && len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "true":
		d.i += 4
		return lua.LTrue
	case c == 'f' && len(d.s)-d.i >= 5 && d.s[d.i:d.i+5] == "false":
		d.i += 5
		return lua.LFalse
	case c == 'n' && len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null":
		d.i += 4
		return d.cj.null
	default:
		j := d.i
		for j < len(d.s) && (d.s[j] == '-' || d.s[j] == '+' || d.s[j] == '.' || d.s[j] == 'e' || d.s[j] == 'E' ||
			(d.s[j] >= '0' && d.s[j] <= '9') || (d.cj.decodeInvalid && (d.s[j] == 'x' || d.s[j] == 'X' ||
			(d.s[j] >= 'a' && d.s[j] <= 'f') || (d.s[j] >= 'A' && d.s[j] <= 'F') || d.s[j] == 'i' || d.s[j] == 'n'))) {
			j++
		}
		f, err := strconv.ParseFloat(d.s[d.i:j], 64)
		if j == d.i || err != nil {
			if n, ierr := strconv.ParseInt(d.s[d.i:j], 0, 64); ierr == nil && j > d.i {
				d.i = j
				return lua.LNumber(n)
			}
			// lua-cjson reads the longest number there is (strtod) and
			// leaves the rest to the next token
			if f, n := strtod(d.s[d.i:j]); n > 0 {
				d.i += n
				return lua.LNumber(f)
			}
			if j > d.i && (c == '-' || isDigit(c)) {
				d.failFound("value", "invalid number")
			} else {
				d.fail("value")
			}
			return lua.LNil
		}
		d.i = j
		return lua.LNumber(f)
	}
}

// str reads a JSON string at d.i (on its opening quote), where want was
// expected (for the error of a string without its end).
func (d *jsonDecoder) str(want string) string {
	d.i++
	var b []byte
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b)
		case c == '\\' && d.i+1 < len(d.s):
			d.i++
			switch e := d.s[d.i]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				if d.i+4 >= len(d.s) {
					d.fail("unicode escape")
					return ""
				}
				r, err := strconv.ParseUint(d.s[d.i+1:d.i+5], 16, 32)
				if err != nil {
					d.fail("unicode escape")
					return ""
				}
				d.i += 4
				if r >= 0xd800 && r < 0xdc00 && d.i+6 < len(d.s) && d.s[d.i+1] == '\\' && d.s[d.i+2] == 'u' {
					if lo, err := strconv.ParseUint(d.s[d.i+3:d.i+7], 16, 32); err == nil && lo >= 0xdc00 && lo < 0xe000 {
						r = (r-0xd800)<<10 + (lo - 0xdc00) + 0x10000
						d.i += 6
					}
				}
				b = utf8.AppendRune(b, rune(r))
			case '"', '\\', '/':
				b = append(b, e)
			default:
				d.i--
				d.failFound(want, "invalid escape code")
				return ""
			}
			d.i++
		case c < 0x20:
			d.fail("string")
			return ""
		default:
			b = append(b, c)
			d.i++
		}
	}
	d.failFound(want, "unexpected end of string")
	return ""
}
