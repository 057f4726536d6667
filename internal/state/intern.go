package state

import (
	"sync"

	"github.com/gantry-project/gantry/internal/structs"
)

// Stored allocations share their repeated strings (statuses, descriptions,
// task event types and messages) instead of each holding the copies JSON
// decoding made of them: an agent resends an allocation's whole event list
// with every report, and a million allocations hold a few distinct values.
// Sharing changes no value, only where the bytes live (docs/bench.md,
// memory per allocation).

// maxInterned bounds the shared-string table and maxInternLen the strings
// it takes; past the bound strings are kept as decoded.
const (
	maxInterned  = 16384
	maxInternLen = 128
)

var interned = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// intern returns a shared string equal to s.
func intern(s string) string {
	switch s {
	case "":
		return ""
	case structs.AllocDesiredRun:
		return structs.AllocDesiredRun
	case structs.AllocDesiredStop:
		return structs.AllocDesiredStop
	case structs.AllocDesiredEvict:
		return structs.AllocDesiredEvict
	case structs.AllocClientPending: // also TaskStatePending
		return structs.AllocClientPending
	case structs.AllocClientRunning: // also TaskStateRunning
		return structs.AllocClientRunning
	case structs.AllocClientComplete:
		return structs.AllocClientComplete
	case structs.AllocClientFailed:
		return structs.AllocClientFailed
	case structs.AllocClientLost:
		return structs.AllocClientLost
	case structs.TaskStateDead:
		return structs.TaskStateDead
	}
	if len(s) > maxInternLen {
		return s
	}
	interned.Lock()
	defer interned.Unlock()
	if c, ok := interned.m[s]; ok {
		return c
	}
	if len(interned.m) < maxInterned {
		interned.m[s] = s
	}
	return s
}

// internAlloc makes a's repeated strings shared ones. a must be the
// transaction's own copy.
func internAlloc(a *structs.Allocation) {
	a.DesiredStatus = intern(a.DesiredStatus)
	a.DesiredDescription = intern(a.DesiredDescription)
	a.ClientStatus = intern(a.ClientStatus)
	a.ClientDescription = intern(a.ClientDescription)
	internTaskState(&a.TaskState)
}

// internTaskState does the same for a task state whose Events slice the
// caller owns.
func internTaskState(ts *structs.TaskState) {
	ts.State = intern(ts.State)
	for i := range ts.Events {
		ts.Events[i].Type = intern(ts.Events[i].Type)
		ts.Events[i].Message = intern(ts.Events[i].Message)
	}
}
