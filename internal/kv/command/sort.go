package command

import (
	"bytes"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
// [ALPHA] [STORE destination] and SORT_RO, as Redis's sort.c. BY and GET
// patterns read keys that are not among the command's keys: the handler
// then holds every shard (outside a transaction it releases its locks and
// takes all of them in order; inside EXEC it takes the missing ones without
// waiting). A STORE is logged by its effect (DEL and RPUSH of the result),
// so replaying it never depends on the keys the patterns read.

// SortKeys is the key extractor of SORT: the key and the last STORE key.
func SortKeys(args [][]byte, dst [][]byte) [][]byte {
	if len(args) < 2 {
		return dst
	}
	dst = append(dst, args[1])
	store := -1
	for i := 2; i < len(args); i++ {
		switch {
		case EqualFold(args[i], "limit"):
			i += 2
		case EqualFold(args[i], "get") || EqualFold(args[i], "by"):
			i++
		case EqualFold(args[i], "store") && i+1 < len(args):
			store = i + 1
		}
	}
	if store > 0 {
		dst = append(dst, args[store])
	}
	return dst
}

type sortArgs struct {
	desc, alpha, dontSort bool
	start, count          int64
	by                    []byte
	gets                  [][]byte
	store                 []byte
}

func (c *Ctx) parseSort(readonly bool) (a sortArgs, ok bool) {
	a.count = -1
	cluster := c.Track.Settings.Cluster()
	for j := 2; j < len(c.Args); j++ {
		left := len(c.Args) - j - 1
		switch arg := c.Args[j]; {
		case EqualFold(arg, "asc"):
			a.desc = false
		case EqualFold(arg, "desc"):
			a.desc = true
		case EqualFold(arg, "alpha"):
			a.alpha = true
		case EqualFold(arg, "limit") && left >= 2:
			if a.start, ok = c.ArgInt(j + 1); !ok {
				return a, false
			}
			if a.count, ok = c.ArgInt(j + 2); !ok {
				return a, false
			}
			j += 2
		case !readonly && EqualFold(arg, "store") && left >= 1:
			a.store = c.Args[j+1]
			j++
		case EqualFold(arg, "by") && left >= 1:
			a.by = c.Args[j+1]
			if bytes.IndexByte(a.by, '*') < 0 {
				a.dontSort = true
			} else if cluster {
				c.W.Error("ERR BY option of SORT denied in Cluster mode.")
				return a, false
			}
			j++
		case EqualFold(arg, "get") && left >= 1:
			if cluster {
				c.W.Error("ERR GET option of SORT denied in Cluster mode.")
				return a, false
			}
			a.gets = append(a.gets, c.Args[j+1])
			j++
		default:
			c.W.Error(ErrSyntax)
			return a, false
		}
	}
	return a, true
}

// readsOtherKeys reports whether the patterns look keys up.
func (a *sortArgs) readsOtherKeys() bool {
	if !a.dontSort && a.by != nil {
		return true
	}
	for _, g := range a.gets {
		if string(g) != "#" && bytes.IndexByte(g, '*') >= 0 {
			return true
		}
	}
	return false
}

// patternKey substitutes elem for the first '*' of pattern; field is the
// hash field after "->" (nil for a string key). ok is false for a pattern
// without '*'.
func patternKey(pattern, elem []byte) (key, field []byte, ok bool) {
	star := bytes.IndexByte(pattern, '*')
	if star < 0 {
		return nil, nil, false
	}
	rest := pattern[star+1:]
	if f := bytes.Index(rest, []byte("->")); f >= 0 && f+2 < len(rest) {
		field = rest[f+2:]
		rest = rest[:f]
	}
	key = make([]byte, 0, star+len(elem)+len(rest))
	key = append(append(append(key, pattern[:star]...), elem...), rest...)
	return key, field, true
}

// lookupPattern is Redis's lookupKeyByPattern: "#" is the element itself,
// "key*" a string key, "key*->field" a hash field; nil when absent.
func (c *Ctx) lookupPattern(pattern, elem []byte) []byte {
	if string(pattern) == "#" {
		return elem
	}
	key, field, ok := patternKey(pattern, elem)
	if !ok {
		return nil
	}
	e := c.Lookup(key)
	if e == nil {
		return nil
	}
	if field == nil {
		if !e.IsString() {
			return nil
		}
		return e.Bytes()
	}
	h := keyspace.Hashes.Of(e)
	if h == nil {
		return nil
	}
	v, _ := h.Get(field)
	return v
}

// holdAllShards makes sure every shard a pattern may reach is locked; it
// returns a function releasing what it took, or false after replying an
// error.
func (c *Ctx) holdAllShards() (release func(), ok bool) {
	switch {
	case c.AllLocked:
		return func() {}, true
	case !c.InExec:
		// outside a transaction: let go, then take every shard in order;
		// what was read before is read again
		c.Unlock()
		c.LockAll()
		if c.Track.MovingLocked(c.Keys) {
			c.W.Error("TRYAGAIN Key is being migrated, try again")
			return nil, false
		}
		return func() {}, true
	}
	// inside EXEC, which holds the shards of its commands: take the others
	// without waiting (waiting could deadlock against another client)
	held := make([]bool, keyspace.NumShards)
	for _, i := range c.Locked {
		held[i] = true
	}
	var taken []int
	release = func() {
		for _, i := range taken {
			c.KS.UnlockShard(i)
		}
	}
	for i := 0; i < keyspace.NumShards; i++ {
		if held[i] {
			continue
		}
		got := false
		for try := 0; try < 1000 && !got; try++ {
			if got = c.KS.TryLockShard(i); !got {
				runtime.Gosched()
			}
		}
		if !got {
			release()
			c.W.Error("ERR SORT with BY or GET patterns could not lock the keys it reads inside this transaction, try again")
			return nil, false
		}
		taken = append(taken, i)
	}
	return release, true
}

// strtod parses a number as C's strtod with the whole string consumed
// (SORT's numeric scores): leading blanks allowed, "" is 0, NaN refused.
func strtod(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	s := strings.TrimLeft(string(b), " \t\n\v\f\r")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

type sortItem struct {
	elem  []byte
	score float64
	cmp   []byte // ALPHA BY: the value of the pattern (nil when absent)
}

func cmdSort(c *Ctx)   { c.sortGeneric(false) }
func cmdSortRO(c *Ctx) { c.sortGeneric(true) }

func (c *Ctx) sortGeneric(readonly bool) {
	a, ok := c.parseSort(readonly)
	if !ok {
		return
	}
	release := func() {}
	if a.readsOtherKeys() {
		if release, ok = c.holdAllShards(); !ok {
			return
		}
	}
	defer release()
	e := c.readKey(c.Args[1])
	var list *keyspace.List
	var set *keyspace.Set
	var zset *keyspace.ZSet
	if e != nil {
		list, set, zset = keyspace.Lists.Of(e), keyspace.Sets.Of(e), keyspace.ZSets.Of(e)
		if list == nil && set == nil && zset == nil {
			c.W.Error(ErrWrongType)
			return
		}
	}
	by := a.by
	if a.dontSort && set != nil && (a.store != nil || c.InScript) {
		// a set has no order of its own: a stored result (and a script's,
		// as in Redis) is sorted ALPHA, so it is the same on a replica
		a.dontSort, a.alpha, by = false, true, nil
	}
	n := 0
	switch {
	case list != nil:
		n = list.Len()
	case set != nil:
		n = set.Len()
	case zset != nil:
		n = zset.Card()
	}
	start := max(a.start, 0)
	end := int64(n) - 1
	if a.count >= 0 && a.count <= int64(n)-start { // a bigger count reaches the end
		end = start + a.count - 1
	}
	if start >= int64(n) {
		start, end = int64(n)-1, int64(n)-2
	}
	end = min(end, int64(n)-1)
	var items []sortItem
	switch {
	case list != nil && a.dontSort:
		// the list's own order (reversed with DESC), only the range
		for i := start; i <= end; i++ {
			idx := i
			if a.desc {
				idx = int64(n) - 1 - i
			}
			items = append(items, sortItem{elem: list.At(int(idx))})
		}
		end, start = end-start, 0
	case zset != nil && a.dontSort:
		if end >= start {
			for i := start; i <= end; i++ {
				idx := i
				if a.desc {
					idx = int64(n) - 1 - i
				}
				items = append(items, sortItem{elem: []byte(zset.ByRank(int(idx)).Member())})
			}
		}
		end, start = end-start, 0
	case list != nil:
		for i := 0; i < n; i++ {
			items = append(items, sortItem{elem: list.At(i)})
		}
	case set != nil:
		set.Each(func(m []byte) { items = append(items, sortItem{elem: m}) })
	case zset != nil:
		zset.Members(func(m string, _ float64) { items = append(items, sortItem{elem: []byte(m)}) })
	}
	if !a.dontSort {
		for i := range items {
			val := items[i].elem
			if by != nil {
				if val = c.lookupPattern(by, items[i].elem); val == nil {
					continue
				}
			}
			if a.alpha {
				if by != nil {
					items[i].cmp = val
				}
				continue
			}
			f, ok := strtod(val)
			if !ok {
				c.W.Error("ERR One or more scores can't be converted into double")
				return
			}
			items[i].score = f
		}
		sort.SliceStable(items, func(i, j int) bool {
			cmp := sortCompare(&items[i], &items[j], a.alpha, by != nil)
			if a.desc {
				cmp = -cmp
			}
			return cmp < 0
		})
	}
	var out []sortItem
	if end >= start && start >= 0 {
		out = items[start : end+1]
	}
	if a.store == nil {
		if len(a.gets) == 0 {
			c.W.Array(len(out))
			for _, it := range out {
				c.W.Bulk(it.elem)
			}
			return
		}
		c.W.Array(len(out) * len(a.gets))
		for _, it := range out {
			for _, g := range a.gets {
				if v := c.lookupPattern(g, it.elem); v != nil {
					c.W.Bulk(v)
				} else {
					c.W.Null()
				}
			}
		}
		return
	}
	var vals [][]byte
	for _, it := range out {
		if len(a.gets) == 0 {
			vals = append(vals, keyspace.CopyBytes(it.elem))
			continue
		}
		for _, g := range a.gets {
			vals = append(vals, keyspace.CopyBytes(c.lookupPattern(g, it.elem)))
		}
	}
	c.storeSorted(a.store, vals)
	c.W.Int(int64(len(vals)))
}

// sortCompare is Redis's sortCompare (before DESC): numbers, ties broken by
// the elements' bytes; ALPHA by the pattern's values (absent first) or the
// elements.
func sortCompare(x, y *sortItem, alpha, byPattern bool) int {
	if !alpha {
		switch {
		case x.score > y.score:
			return 1
		case x.score < y.score:
			return -1
		}
		return bytes.Compare(x.elem, y.elem)
	}
	if byPattern {
		switch {
		case x.cmp == nil && y.cmp == nil:
			return 0
		case x.cmp == nil:
			return -1
		case y.cmp == nil:
			return 1
		}
		return bytes.Compare(x.cmp, y.cmp)
	}
	return bytes.Compare(x.elem, y.elem)
}

// storeSorted replaces dst with a list of vals (deleting it when empty),
// logged as DEL and RPUSH.
func (c *Ctx) storeSorted(dst []byte, vals [][]byte) {
	existed := c.Lookup(dst) != nil
	if existed {
		c.KS.DeleteLocked(dst)
	}
	if len(vals) == 0 {
		if existed {
			c.Dirty++
			c.Log(bDEL, dst)
		}
		return
	}
	l := &keyspace.List{}
	for _, v := range vals {
		l.PushBack(v)
	}
	c.KS.AddLocked(dst, keyspace.Lists.NewEntry(l))
	c.Dirty++
	c.Log(bDEL, dst)
	for chunk := range slices.Chunk(vals, 128) {
		c.Log(append([][]byte{bRPUSH, dst}, chunk...)...)
	}
}
