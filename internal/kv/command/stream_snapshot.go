package command

import (
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

var (
	bXSETID       = []byte("XSETID")
	bENTRIESADDED = []byte("ENTRIESADDED")
	bMAXDELETEDID = []byte("MAXDELETEDID")
)

// appendStream appends the commands that recreate a stream, as Redis's AOF
// rewrite writes them: an XADD per entry (an empty stream is an XADD
// trimmed to nothing), XSETID for the last ID and counters, then per group
// XGROUP CREATE, XGROUP CREATECONSUMER for each consumer and an XCLAIM
// per pending entry that still exists (with its delivery time and count).
func appendStream(b []byte, k []byte, s *keyspace.Stream) []byte {
	args := make([][]byte, 0, 16)
	if s.Len() == 0 {
		b = resp.AppendCommand(b, bXADD, k, bMAXLEN, bZero, []byte("0-1"), []byte("x"), []byte("y"))
	}
	s.Range(keyspace.StreamID{}, keyspace.MaxStreamID, false, func(e keyspace.StreamEntry) bool {
		args = append(args[:0], bXADD, k, e.ID.AppendTo(nil))
		e.Fields(func(f, v []byte) { args = append(args, f, v) })
		b = resp.AppendCommand(b, args...)
		return true
	})
	b = resp.AppendCommand(b, bXSETID, k, s.LastID().AppendTo(nil),
		bENTRIESADDED, strconv.AppendInt(nil, s.EntriesAdded(), 10),
		bMAXDELETEDID, s.MaxDeletedID().AppendTo(nil))
	for _, g := range s.Groups() {
		name := []byte(g.Name)
		b = resp.AppendCommand(b, bXGROUP, bCREATE, k, name, g.LastID.AppendTo(nil),
			bENTRIESREAD, strconv.AppendInt(nil, g.EntriesRead, 10))
		for _, c := range g.Consumers() {
			b = resp.AppendCommand(b, bXGROUP, bCREATECONSUMER, k, name, []byte(c.Name))
		}
		g.PendingRange(nil, keyspace.StreamID{}, keyspace.MaxStreamID, func(id keyspace.StreamID, p *keyspace.PendingEntry) bool {
			if s.Has(id) {
				b = resp.AppendCommand(b, bXCLAIM, k, name, []byte(p.Consumer.Name), bZero, id.AppendTo(nil),
					bTIME, strconv.AppendInt(nil, p.DeliveryTime, 10),
					bRETRYCOUNT, strconv.AppendInt(nil, p.DeliveryCount, 10), bJUSTID, bFORCE)
			}
			return true
		})
	}
	return b
}
