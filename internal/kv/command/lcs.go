package command

// lcsMaxCells bounds LCS's table (4 bytes a cell): Redis bounds it by
// proto-max-bulk-len, 512 MB by default.
const lcsMaxCells = 512 << 20 / 4

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest
// common subsequence of two strings, as Redis 7 (the same walk back
// through the table, so the same matches in the same order).
func cmdLCS(c *Ctx) {
	var getIdx, getLen, withMatchLen bool
	var minMatchLen int64
	for j := 3; j < len(c.Args); j++ {
		switch {
		case EqualFold(c.Args[j], "idx"):
			getIdx = true
		case EqualFold(c.Args[j], "len"):
			getLen = true
		case EqualFold(c.Args[j], "withmatchlen"):
			withMatchLen = true
		case EqualFold(c.Args[j], "minmatchlen") && j+1 < len(c.Args):
			n, ok := c.ArgInt(j + 1)
			if !ok {
				return
			}
			minMatchLen = max(n, 0)
			j++
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	if getIdx && getLen {
		c.W.Error("ERR If you want both the length and indexes, please just use IDX.")
		return
	}
	var a, b []byte
	for i, dst := range []*[]byte{&a, &b} {
		e := c.Lookup(c.Args[1+i])
		if e != nil && !e.IsString() {
			c.W.Error("ERR The specified keys must contain string values")
			return
		}
		if e != nil {
			*dst = e.Bytes()
		}
	}
	alen, blen := len(a), len(b)
	if int64(alen+1)*int64(blen+1) > lcsMaxCells {
		c.W.Error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
		return
	}
	w := blen + 1
	tab := make([]uint32, (alen+1)*w)
	at := func(i, j int) uint32 { return tab[i*w+j] }
	for i := 1; i <= alen; i++ {
		for j := 1; j <= blen; j++ {
			switch {
			case a[i-1] == b[j-1]:
				tab[i*w+j] = at(i-1, j-1) + 1
			case at(i-1, j) > at(i, j-1):
				tab[i*w+j] = at(i-1, j)
			default:
				tab[i*w+j] = at(i, j-1)
			}
		}
	}
	total := at(alen, blen)
	if getLen {
		c.W.Int(int64(total))
		return
	}
	type match struct{ a0, a1, b0, b1 int }
	var matches []match
	result := make([]byte, total)
	idx := int(total)
	i, j := alen, blen
	aStart, aEnd, bStart, bEnd := alen, 0, 0, 0
	for i > 0 && j > 0 {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			switch {
			case aStart == alen: // a new range
				aStart, aEnd, bStart, bEnd = i-1, i-1, j-1, j-1
			case aStart == i && bStart == j: // contiguous: extend it back
				aStart--
				bStart--
			default:
				emit = true
			}
			if aStart == 0 || bStart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if at(i-1, j) > at(i, j-1) {
				i--
			} else {
				j--
			}
			if aStart != alen {
				emit = true
			}
		}
		if emit {
			if n := int64(aEnd - aStart + 1); minMatchLen == 0 || n >= minMatchLen {
				matches = append(matches, match{aStart, aEnd, bStart, bEnd})
			}
			aStart = alen
		}
	}
	if !getIdx {
		c.W.Bulk(result)
		return
	}
	c.W.Map(2)
	c.W.BulkString("matches")
	c.W.Array(len(matches))
	for _, m := range matches {
		if withMatchLen {
			c.W.Array(3)
		} else {
			c.W.Array(2)
		}
		c.W.Array(2)
		c.W.Int(int64(m.a0))
		c.W.Int(int64(m.a1))
		c.W.Array(2)
		c.W.Int(int64(m.b0))
		c.W.Int(int64(m.b1))
		if withMatchLen {
			c.W.Int(int64(m.a1 - m.a0 + 1))
		}
	}
	c.W.BulkString("len")
	c.W.Int(int64(total))
}

// LCSSpecs registers LCS.
func LCSSpecs() []Spec {
	return []Spec{{"lcs", -3, "readonly", 1, 2, 1, "string", cmdLCS, nil}}
}
