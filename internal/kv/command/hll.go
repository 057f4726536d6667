package command

import (
	"math/rand/v2"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST. The
// values are strings in Redis's representation (keyspace/hll.go).

// lookupHLL returns the string entry of key holding a HyperLogLog (nil if
// absent); ok is false after replying the error.
func (c *Ctx) lookupHLL(key []byte) (*keyspace.Entry, bool) {
	e, ok := c.lookupString(key)
	if !ok || e == nil {
		return nil, ok
	}
	if err := keyspace.IsHLL(e.Bytes()); err != nil {
		c.W.Error(err.Error())
		return nil, false
	}
	return e, true
}

// PFADD key [element ...]
func cmdPFAdd(c *Ctx) {
	e, ok := c.lookupHLL(c.Args[1])
	if !ok {
		return
	}
	updated := false
	var b []byte
	if e == nil {
		b = keyspace.NewHLL()
		updated = true
	} else {
		b = e.Bytes()
	}
	max := c.Track.Settings.HLLSparseMaxBytes()
	for _, ele := range c.Args[2:] {
		nb, changed, err := keyspace.HLLAdd(b, ele, max)
		if err != nil {
			// as Redis: the elements added before the corruption was
			// found stay (the value was valid up to here), unlogged
			c.W.Error(err.Error())
			e.SetBytes(b)
			return
		}
		b = nb
		updated = updated || changed
	}
	if !updated {
		c.W.Int(0)
		return
	}
	b[15] |= 0x80 // the cached cardinality is stale
	if e == nil {
		c.KS.AddLocked(c.Args[1], keyspace.NewString(b, 0))
	} else {
		e.SetBytes(b)
	}
	c.Dirty++
	c.W.Int(1)
}

// PFCOUNT key [key ...]: one key uses and refreshes the cached cardinality
// in the value (as Redis, without logging it: the cache is derived from
// the registers); several keys count their union.
func cmdPFCount(c *Ctx) {
	if len(c.Args) == 2 {
		e, ok := c.lookupHLL(c.Args[1])
		if !ok {
			return
		}
		if e == nil {
			c.W.Int(0)
			return
		}
		b := e.Bytes()
		if card, ok := keyspace.HLLCachedCount(b); ok {
			c.W.Int(int64(card))
			return
		}
		card, err := keyspace.HLLCount(b)
		if err != nil {
			c.W.Error(err.Error())
			return
		}
		keyspace.HLLSetCache(b, card)
		c.W.Int(int64(card))
		return
	}
	regs := make([]uint8, 1<<14)
	for _, k := range c.Args[1:] {
		e, ok := c.lookupHLL(k)
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		if err := keyspace.HLLMergeInto(regs, e.Bytes()); err != nil {
			c.W.Error(err.Error())
			return
		}
	}
	c.W.Int(int64(keyspace.HLLCountRegisters(regs)))
}

// PFMERGE destkey [sourcekey ...]: the registers' maximum over all the keys,
// the destination included; dense when any input is.
func cmdPFMerge(c *Ctx) {
	regs := make([]uint8, 1<<14)
	dense := false
	for _, k := range c.Args[1:] {
		e, ok := c.lookupHLL(k)
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		b := e.Bytes()
		if !keyspace.HLLIsSparse(b) {
			dense = true
		}
		if err := keyspace.HLLMergeInto(regs, b); err != nil {
			c.W.Error(err.Error())
			return
		}
	}
	dst := c.Lookup(c.Args[1])
	b := keyspace.NewHLL()
	if dst != nil {
		b = keyspace.CopyBytes(dst.Bytes())
	}
	b, err := keyspace.HLLFromRegisters(b, regs, dense, c.Track.Settings.HLLSparseMaxBytes())
	if err != nil {
		c.W.Error(err.Error())
		return
	}
	if dst == nil {
		c.KS.AddLocked(c.Args[1], keyspace.NewString(b, 0))
	} else {
		dst.SetBytes(b)
	}
	c.Dirty++
	c.W.OK()
}

// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
func cmdPFDebug(c *Ctx) {
	sub := string(LowerInto(nil, c.Args[1]))
	e := c.Lookup(c.Args[2])
	if e == nil {
		c.W.Error("ERR The specified key does not exist")
		return
	}
	if !e.IsString() {
		c.W.Error(ErrWrongType)
		return
	}
	b := e.Bytes()
	if err := keyspace.IsHLL(b); err != nil {
		c.W.Error(err.Error())
		return
	}
	// GETREG and TODENSE turn a sparse value dense (logged, as Redis
	// propagates the change)
	toDense := func() bool {
		d, err := keyspace.HLLToDense(b)
		if err != nil {
			c.W.Error(keyspace.ErrHLLCorrupt.Error())
			return false
		}
		if keyspace.HLLIsSparse(b) {
			e.SetBytes(d)
			b = d
			c.Dirty++
			c.Log(bSET, c.Args[2], d, bKEEPTTL)
		}
		return true
	}
	switch sub {
	case "getreg":
		if !toDense() {
			return
		}
		regs, _ := keyspace.HLLRegisters(b)
		c.W.Array(len(regs))
		for _, r := range regs {
			c.W.Int(int64(r))
		}
	case "decode":
		if !keyspace.HLLIsSparse(b) {
			c.W.Error("ERR HLL encoding is not sparse")
			return
		}
		c.W.Simple(keyspace.HLLDecodeSparse(b))
	case "encoding":
		if keyspace.HLLIsSparse(b) {
			c.W.Simple("sparse")
		} else {
			c.W.Simple("dense")
		}
	case "todense":
		was := keyspace.HLLIsSparse(b)
		if !toDense() {
			return
		}
		if was {
			c.W.Int(1)
		} else {
			c.W.Int(0)
		}
	default:
		c.W.Error("ERR Unknown PFDEBUG subcommand '" + Trunc(c.Args[1], 128) + "'")
	}
}

// PFSELFTEST checks the register access of the dense representation and
// that sparse and dense representations of the same elements count alike
// and within the expected error, as Redis's self test does.
func cmdPFSelfTest(c *Ctx) {
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	if msg := keyspace.HLLSelfTestRegisters(r.Uint32); msg != "" {
		c.W.Error("TESTFAILED " + msg)
		return
	}
	sparse, dense := keyspace.NewHLL(), keyspace.NewHLL()
	dense, _ = keyspace.HLLToDense(dense)
	seed := r.Uint64()
	var buf [8]byte
	for n := uint64(1); n <= 10000; n++ {
		ele := strconv.AppendUint(buf[:0], seed+n, 10)
		sparse, _, _ = keyspace.HLLAdd(sparse, ele, 1<<20)
		dense, _, _ = keyspace.HLLAdd(dense, ele, 1<<20)
		if n%100 != 0 && n > 100 {
			continue
		}
		cs, err1 := keyspace.HLLCount(sparse)
		cd, err2 := keyspace.HLLCount(dense)
		if err1 != nil || err2 != nil || cs != cd {
			c.W.Error("TESTFAILED sparse count " + strconv.FormatUint(cs, 10) + " != dense count " + strconv.FormatUint(cd, 10))
			return
		}
		// 1.04/sqrt(m) relative error; Redis checks 5 sigmas (more for
		// tiny counts)
		rel := 1.04 / 128 * 5
		if n < 500 {
			rel *= 2
		}
		if diff := float64(cd) - float64(n); diff > float64(n)*rel || -diff > float64(n)*rel {
			c.W.Error("TESTFAILED Too big error. card:" + strconv.FormatUint(n, 10) + " abserr:" + strconv.FormatFloat(diff, 'f', -1, 64))
			return
		}
	}
	c.W.OK()
}
