package state

import (
	"context"
	"math/rand/v2"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Limits of blocking queries.
const (
	// DefaultQueryWait is used when a blocking query names no wait time.
	DefaultQueryWait = 5 * time.Minute
	// MaxQueryWait caps the wait a client may ask for.
	MaxQueryWait = 5 * time.Minute
)

// QueryFn runs a read on snap, adding what it read to ws, and returns the
// index of the result (usually the index of the tables it read).
type QueryFn func(ws memdb.WatchSet, snap *Snapshot) (uint64, error)

// BlockingQuery runs fn and, while the result's index is not above
// minIndex, waits for a change to what fn read, then runs it again. It
// returns the last result's index when the index passes minIndex, the wait
// ends (wait is capped at MaxQueryWait and jittered by up to 1/16 so many
// clients do not wake together), or ctx is done. minIndex 0 answers at once.
func (s *Store) BlockingQuery(ctx context.Context, minIndex uint64, wait time.Duration, fn QueryFn) (uint64, error) {
	if wait <= 0 {
		wait = DefaultQueryWait
	}
	if wait > MaxQueryWait {
		wait = MaxQueryWait
	}
	wait += rand.N(wait/16 + 1)
	deadline, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		ws := memdb.NewWatchSet()
		idx, err := fn(ws, s.Snapshot())
		if err != nil || minIndex == 0 || idx > minIndex {
			return idx, err
		}
		if err := ws.WatchCtx(deadline); err != nil {
			if ctx.Err() != nil {
				return idx, ctx.Err()
			}
			// The wait ended without change: answer with what there is.
			return idx, nil
		}
	}
}
