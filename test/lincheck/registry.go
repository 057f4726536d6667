// Package lincheck records client operations on gantry's job registry and
// checks the history for linearizability with porcupine. The HA and
// partition tests share it.
package lincheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gantry-project/gantry/api"
)

// The job registry as porcupine sees it: per job name, whether it exists,
// its count and whether it is stopped. Operations are register (sets count,
// un-stops), stop (404 for a missing job) and a consistent read.

// Input is one operation on the registry.
type Input struct {
	Op    string // "register", "stop", "read"
	Job   string
	Count int
}

// Output is what the client saw.
type Output struct {
	NotFound bool
	Count    int
	Stopped  bool
	// Unknown marks a write whose outcome the client could not learn (the
	// server died or lost leadership mid-request). Its return time is set
	// to infinity so porcupine may place it anywhere after its call.
	Unknown bool
}

type regState struct {
	Exists  bool
	Count   int
	Stopped bool
}

// Model is the registry model for porcupine, partitioned by job name.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byJob := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			j := op.Input.(Input).Job
			if _, ok := byJob[j]; !ok {
				order = append(order, j)
			}
			byJob[j] = append(byJob[j], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, j := range order {
			out = append(out, byJob[j])
		}
		return out
	},
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(regState), input.(Input), output.(Output)
		switch in.Op {
		case "register":
			return true, regState{Exists: true, Count: in.Count}
		case "stop":
			if !st.Exists {
				return out.Unknown || out.NotFound, st
			}
			if out.NotFound {
				return false, st
			}
			return true, regState{Exists: true, Count: st.Count, Stopped: true}
		case "read":
			if !st.Exists {
				return out.NotFound, st
			}
			return !out.NotFound && out.Count == st.Count && out.Stopped == st.Stopped, st
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		switch {
		case out.Unknown:
			return fmt.Sprintf("%s(%s,%d) -> ?", in.Op, in.Job, in.Count)
		case out.NotFound:
			return fmt.Sprintf("%s(%s,%d) -> 404", in.Op, in.Job, in.Count)
		}
		return fmt.Sprintf("%s(%s,%d) -> count=%d stopped=%v", in.Op, in.Job, in.Count, out.Count, out.Stopped)
	},
}

// History records client operations with their call and return times.
type History struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

func (h *History) now() int64 { return int64(time.Since(h.start)) }

func (h *History) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Operations returns a copy of the recorded operations.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// NewHistory starts a history; times are relative to now.
func NewHistory() *History { return &History{start: time.Now()} }

// Worker runs random register/stop/read operations on a few jobs until
// ctx ends or maxOps is reached, recording every one with a known outcome
// (and every write with an unknown one).
func Worker(ctx context.Context, id int, c *api.Client, h *History, seed uint64, maxOps int, badErr func(error)) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	for n := 0; n < maxOps && ctx.Err() == nil; n++ {
		// Enough jobs that each partition of the history stays small:
		// writes of unknown outcome make the search branch.
		in := Input{Job: fmt.Sprintf("lin-%d", rng.IntN(12))}
		switch r := rng.IntN(10); {
		case r < 5:
			in.Op = "read"
		case r < 8:
			in.Op, in.Count = "register", 1+rng.IntN(3)
		default:
			in.Op = "stop"
		}
		opCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		call := h.now()
		var out Output
		var err error
		switch in.Op {
		case "register":
			_, err = c.RegisterJob(opCtx, &api.Job{Name: in.Job, Count: in.Count, Driver: "mock",
				Resources: api.Resources{CPU: 10, MemoryMB: 8}})
		case "stop":
			_, err = c.StopJob(opCtx, in.Job, false)
		case "read":
			var j *api.Job
			j, _, err = c.Job(opCtx, in.Job, nil)
			if err == nil {
				out.Count, out.Stopped = j.Count, j.Stop
			}
		}
		ret := h.now()
		cancel()
		if ctx.Err() != nil && err != nil {
			// The test is ending: an interrupted write is still recorded
			// as unknown, an interrupted read is dropped.
			if in.Op != "read" {
				h.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: Output{Unknown: true}, Return: math.MaxInt64})
			}
			return
		}
		var ae *api.APIError
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound:
			out.NotFound = true
		case errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest:
			badErr(fmt.Errorf("%s %s: %w", in.Op, in.Job, err))
			return
		default:
			if in.Op == "read" {
				continue // a failed read observed nothing
			}
			h.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: Output{Unknown: true}, Return: math.MaxInt64})
			// Back off while there is no leader: every failed write is one
			// more operation porcupine may place anywhere after its call.
			time.Sleep(time.Second)
			continue
		}
		h.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
	}
}

// Check checks the history; on failure it writes porcupine's visualization
// to a file in dir and returns its path.
func Check(h *History, timeout time.Duration, dir string) (porcupine.CheckResult, int, string) {
	ops := h.Operations()
	res, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	if res == porcupine.Ok {
		return res, len(ops), ""
	}
	path := filepath.Join(dir, "lincheck.html")
	if f, err := os.Create(path); err == nil {
		_ = porcupine.Visualize(Model, info, f)
		_ = f.Close()
	}
	return res, len(ops), path
}
