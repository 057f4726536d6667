package peer

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/resp"
)

const errTryAgainRehash = "TRYAGAIN Multiple keys request during rehashing of slot"

// wakeBlocked wakes the store's blocked clients so that they route again
// (a client blocked on a slot that moved gets MOVED or ASK). The Cluster's
// owner calls it after publishing a new routing snapshot; the wake-up runs
// on a goroutine of its own, so the owner (heartbeats, votes) never waits
// for the shard locks of every shard.
func (r *Router) wakeBlocked() {
	ks := r.ks.Load()
	if ks == nil || !r.waking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		r.waking.Store(false)
		ks.WakeBlocked()
	}()
}

// routeOpenSlot routes a command on a slot this node migrates or imports,
// with Redis's rules; done is false when the normal rules apply.
//
//   - MIGRATE runs where it is sent.
//   - Migrating (this node owns the slot): keys that all exist run here;
//     all missing -> ASK to the destination; some missing -> TRYAGAIN.
//   - Importing: a command after ASKING (or RESTORE-ASKING) runs here,
//     except a multi-key command with a missing key (TRYAGAIN); without
//     ASKING the owner's MOVED applies.
//
// Existence comes from req.Exists, called under the command's shard locks;
// without it (a command queued in MULTI) the keys count as present.
func routeOpenSlot(rt *routes, slot uint16, req kv.RouteRequest) (string, bool) {
	to, migrating := rt.migrating[slot]
	importing := rt.importing[slot]
	if !migrating && !importing {
		return "", false
	}
	if req.Migrate {
		return "", true
	}
	missing := 0
	if req.Exists != nil {
		for _, k := range req.Keys {
			if !req.Exists(k) {
				missing++
			}
		}
	}
	if migrating {
		switch {
		case missing == 0:
			return "", true
		case missing < len(req.Keys):
			return errTryAgainRehash, true
		}
		return "ASK " + strconv.Itoa(int(slot)) + " " + rt.addrs[to], true
	}
	if !req.Asking {
		return "", false
	}
	if len(req.Keys) > 1 && missing > 0 {
		return errTryAgainRehash, true
	}
	return "", true
}

// writeOpenSlots appends this node's open slots to its CLUSTER NODES line
// as Redis does: [slot->-dst] migrating, [slot-<-src] importing.
func writeOpenSlots(b *strings.Builder, st *Status) {
	for _, s := range slices.Sorted(maps.Keys(st.Migrating)) {
		fmt.Fprintf(b, " [%d->-%s]", s, st.Migrating[s])
	}
	for _, s := range slices.Sorted(maps.Keys(st.Importing)) {
		fmt.Fprintf(b, " [%d-<-%s]", s, st.Importing[s])
	}
}

// cmdSetSlot: CLUSTER SETSLOT slot IMPORTING id | MIGRATING id | STABLE |
// NODE id.
func cmdSetSlot(r *Router, args [][]byte, w *resp.Writer) {
	s, err := ParseSlot(string(args[0]))
	if err != nil {
		w.Error("ERR Invalid or out of range slot")
		return
	}
	action := strings.ToUpper(string(args[1]))
	wantArgs := 3
	if action == "STABLE" {
		wantArgs = 2
	}
	if len(args) != wantArgs || !slices.Contains([]string{"IMPORTING", "MIGRATING", "STABLE", "NODE"}, action) {
		w.Error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
		return
	}
	var id NodeID
	if wantArgs == 3 {
		id = NodeID(args[2])
	}
	op := Op{Kind: OpSetSlot, Slot: s, Node: id}
	switch action {
	case "MIGRATING":
		op.Action = SlotMigrating
	case "IMPORTING":
		op.Action = SlotImporting
	case "STABLE":
		op.Action = SlotStable
	case "NODE":
		op.Action = SlotNode
		// the owner refuses to give a slot away while it holds keys of it;
		// the store counts them (the Node knows nothing of keys)
		if ks := r.ks.Load(); ks != nil {
			op.KeysHeld = ks.CountKeysInSlot(int(s))
		}
	}
	r.doReply(w, op)
}

// cmdReset: CLUSTER RESET [HARD|SOFT]. A primary holding keys refuses; a
// replica is emptied.
func cmdReset(r *Router, args [][]byte, w *resp.Writer) {
	hard := false
	switch {
	case len(args) == 0:
	case len(args) == 1 && strings.EqualFold(string(args[0]), "hard"):
		hard = true
	case len(args) == 1 && strings.EqualFold(string(args[0]), "soft"):
	default:
		w.Error("ERR syntax error")
		return
	}
	replica := r.rt.Load().primary >= 0
	if ks := r.ks.Load(); ks != nil && ks.Len() > 0 && !replica {
		w.Error("ERR CLUSTER RESET can't be called with master nodes containing keys")
		return
	}
	if err := r.c.Reset(hard); err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	// a replica is emptied, as in Redis (the reset made it a primary
	// that replicates from nobody)
	if f, ok := r.c.replicator().(interface{ FlushAll() }); ok && replica {
		f.FlushAll()
	}
	w.OK()
}
