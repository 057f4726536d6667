package keyspace

import (
	"errors"

	"github.com/gantry-project/gantry/internal/kv/rdbcodec"
)

// parseRedisDump decodes a payload made by Redis's DUMP (see rdbcodec)
// into a new entry. Redis's checks and replies apply: a newer RDB version
// or a wrong CRC-64 is ErrDumpChecksum, anything malformed ErrDumpFormat.
func parseRedisDump(p []byte, lim HashLimits, zlim ZSetLimits) (*Entry, error) {
	o, err := rdbcodec.Decode(p)
	if err != nil {
		if errors.Is(err, rdbcodec.ErrChecksum) {
			return nil, ErrDumpChecksum
		}
		return nil, ErrDumpFormat
	}
	e := fromRedis(o, lim, zlim)
	if e == nil {
		return nil, ErrDumpFormat
	}
	return e, nil
}

// fromRedis turns a decoded value into an entry; nil when it does not fit
// gantry's values (rdbcodec has refused empty collections, duplicates and
// NaN scores already).
func fromRedis(o *rdbcodec.Object, lim HashLimits, zlim ZSetLimits) *Entry {
	switch o.Kind {
	case rdbcodec.KindString:
		s := o.Str
		if s == nil {
			s = []byte{}
		}
		return NewString(append([]byte(nil), s...), 0)
	case rdbcodec.KindList:
		l := &List{}
		for _, x := range o.Elems {
			l.PushBack(x)
		}
		return Lists.NewEntry(l)
	case rdbcodec.KindSet:
		s := NewSet()
		for _, x := range o.Elems {
			s.Add(append([]byte(nil), x...))
		}
		return Sets.NewEntry(s)
	case rdbcodec.KindHash:
		h := NewHash()
		for i := 0; i < len(o.Elems); i += 2 {
			h.SetWithin(o.Elems[i], o.Elems[i+1], lim)
		}
		return Hashes.NewEntry(h)
	case rdbcodec.KindZSet:
		// as Redis loads it: a listpack (or ziplist) stays one unless it
		// has more members than the limit; a skip list becomes a listpack
		// if it fits both limits
		small := len(o.Elems) <= zlim.Entries
		if !o.Packed {
			for _, m := range o.Elems {
				small = small && len(m) <= zlim.Value
			}
		}
		return ZSets.NewEntry(zsetOf(o.Elems, o.Scores, small))
	case rdbcodec.KindStream:
		if s := streamFromRedis(o.Stream); s != nil {
			return Streams.NewEntry(s)
		}
	}
	return nil
}

func sid(id rdbcodec.ID) StreamID { return StreamID{Ms: id.Ms, Seq: id.Seq} }

// streamFromRedis rebuilds a stream with DefaultNodeLimits (node
// boundaries are not kept, as for gantry's own payloads). A payload of
// Redis before 7.0 has no read counters: they are estimated from the
// last delivered IDs, as Redis 7 does when it loads one.
func streamFromRedis(rs *rdbcodec.Stream) *Stream {
	s := NewStream()
	for _, e := range rs.Entries {
		if e.ID.Ms == 0 && e.ID.Seq == 0 {
			return nil
		}
		fv := make([][]byte, len(e.Fields))
		copy(fv, e.Fields) // Append encodes them into one allocation
		s.Append(sid(e.ID), fv, DefaultNodeLimits)
	}
	s.SetMeta(sid(rs.LastID), int64(rs.EntriesAdded), sid(rs.MaxDeletedID))
	for _, rg := range rs.Groups {
		last := sid(rg.LastID)
		read := rg.EntriesRead
		if rs.Legacy {
			read = s.EstimateDistance(last)
		}
		g := s.CreateGroup(rg.Name, last, read)
		if g == nil {
			return nil
		}
		cons := make([]*StreamConsumer, len(rg.Consumers))
		for i, rc := range rg.Consumers {
			c := g.CreateConsumer(rc.Name, rc.SeenTime)
			if c == nil {
				return nil
			}
			c.ActiveTime = rc.ActiveTime
			cons[i] = c
		}
		for _, rp := range rg.Pending {
			p := g.Claim(cons[rp.Consumer], sid(rp.ID))
			p.DeliveryTime, p.DeliveryCount = rp.DeliveryTime, int64(rp.DeliveryCount)
		}
	}
	return s
}
