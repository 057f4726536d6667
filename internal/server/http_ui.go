package server

import (
	"net/http"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/jobspec"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/web"
)

// What the web UI needs of the API besides the usual reads: its files
// (GET /ui/, web.Handler), a redirect from / to them, node usage in
// columns for the overview's heat map, and filtering and paging of the
// list endpoints (listed wraps them), so a page at 10,000 nodes or
// 100,000 allocations fetches only the rows it shows.

// uiHandler serves the UI's files.
func uiHandler() http.Handler { return web.Handler("/ui/") }

// rootRedirect sends a browser at / to the UI.
func rootRedirect() http.Handler { return http.RedirectHandler("/ui/", http.StatusFound) }

// listHeaders name the total of a filtered list before paging.
const totalHeader = "X-Gantry-Total"

// maxListLimit bounds one page.
const maxListLimit = 10000

// listQuery is the filter and page of a list request: ?prefix= (of the
// ID, or of the name for nodes), ?status= (a job's derived status, a
// node's status or "draining"/"ineligible", an allocation's client
// status; comma-separated for several), ?offset= and ?limit=.
type listQuery struct {
	prefix        string
	status        []string
	offset, limit int
	paged         bool
}

func parseListQuery(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{prefix: q.Get("prefix")}
	for _, v := range strings.Split(q.Get("status"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			lq.status = append(lq.status, v)
		}
	}
	num := func(name string, lo, hi int) (int, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, badRequest("%s: must be an integer from %d to %d (got %q)", name, lo, hi, v)
		}
		lq.paged = true
		return n, nil
	}
	var err error
	if lq.offset, err = num("offset", 0, 1<<31-1); err != nil {
		return lq, err
	}
	if lq.limit, err = num("limit", 1, maxListLimit); err != nil {
		return lq, err
	}
	return lq, nil
}

func (lq *listQuery) statusOK(s string) bool {
	if len(lq.status) == 0 {
		return true
	}
	for _, v := range lq.status {
		if v == s {
			return true
		}
	}
	return false
}

// page applies the query to rows (already in ID order), setting the
// total header.
func page[T any](w http.ResponseWriter, lq listQuery, rows []T, keep func(T) bool) []T {
	out := rows[:0:0]
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	w.Header().Set(totalHeader, strconv.Itoa(len(out)))
	if !lq.paged {
		return out
	}
	start := min(lq.offset, len(out))
	end := len(out)
	if lq.limit > 0 {
		end = min(start+lq.limit, len(out))
	}
	return out[start:end]
}

// listed wraps a list handler (GET /v1/jobs, /v1/nodes, /v1/allocations)
// with the list query: the handler answers as before (a blocking query,
// whatever access rules it applies), then the rows are filtered and
// paged. Without parameters the answer is unchanged.
func (s *Server) listed(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		lq, err := parseListQuery(r)
		if err != nil {
			return nil, err
		}
		out, err := h(w, r)
		if err != nil || out == nil {
			return out, err
		}
		switch rows := out.(type) {
		case []*api.JobListStub:
			return page(w, lq, rows, func(j *api.JobListStub) bool {
				return strings.HasPrefix(j.ID, lq.prefix) && lq.statusOK(j.Status)
			}), nil
		case []*structs.Node:
			return page(w, lq, rows, func(n *structs.Node) bool {
				if !strings.HasPrefix(n.ID, lq.prefix) && !strings.HasPrefix(n.Name, lq.prefix) {
					return false
				}
				return lq.statusOK(string(n.Status)) || n.Drain && lq.statusOK("draining") || n.Ineligible != "" && lq.statusOK("ineligible")
			}), nil
		case []*structs.Allocation:
			return page(w, lq, rows, func(a *structs.Allocation) bool {
				return (strings.HasPrefix(a.ID, lq.prefix) || strings.HasPrefix(a.Name, lq.prefix)) && lq.statusOK(a.ClientStatus)
			}), nil
		}
		return out, nil
	}
}

// NodeUsage is GET /v1/nodes/usage: every node's capacity and what its
// live allocations use, in columns (one array per field, a node per
// position), so 10,000 nodes are one small answer.
type NodeUsage struct {
	IDs    []string `json:"ids"`
	Names  []string `json:"names"`
	Status []string `json:"status"` // ready, down, draining, ineligible
	CPU    []int64  `json:"cpu"`    // capacity, millicores
	Memory []int64  `json:"memory_mb"`
	// CPUUsed and MemoryUsed are what live allocations hold.
	CPUUsed    []int64 `json:"cpu_used"`
	MemoryUsed []int64 `json:"memory_mb_used"`
	Allocs     []int   `json:"allocs"`
}

// nodesUsage serves GET /v1/nodes/usage (blocking on nodes and
// allocations).
func (s *Server) nodesUsage(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		nodes := snap.NodesWatch(ws)
		snap.AllocsWatch(ws)
		u := &NodeUsage{IDs: make([]string, len(nodes)), Names: make([]string, len(nodes)), Status: make([]string, len(nodes)),
			CPU: make([]int64, len(nodes)), Memory: make([]int64, len(nodes)), CPUUsed: make([]int64, len(nodes)),
			MemoryUsed: make([]int64, len(nodes)), Allocs: make([]int, len(nodes))}
		for i, n := range nodes {
			used := snap.NodeUsage(n.ID)
			st := string(n.Status)
			switch {
			case n.Status != structs.NodeStatusReady:
			case n.Drain:
				st = "draining"
			case n.Ineligible != "":
				st = "ineligible"
			}
			live := 0
			snap.EachAllocOfNode(n.ID, func(a *structs.Allocation) bool {
				if !a.Terminal() {
					live++
				}
				return true
			})
			u.IDs[i], u.Names[i], u.Status[i] = n.ID, n.Name, st
			u.CPU[i], u.Memory[i] = n.Capacity.CPU, n.Capacity.MemoryMB
			u.CPUUsed[i], u.MemoryUsed[i], u.Allocs[i] = used.CPU, used.MemoryMB, live
		}
		return snap.TableIndex(state.TableNodes, state.TableAllocs), u, nil
	})
}

// JobParseRequest is the body of POST /v1/jobs/parse.
type JobParseRequest struct {
	// JobSpec is a job document, YAML or JSON, as `gantry job run` reads.
	JobSpec string `json:"job_spec"`
}

// jobParse serves POST /v1/jobs/parse: a job document (YAML or JSON) in,
// the job as JSON out (defaults applied, validated), or 400 naming each
// problem with its line. Nothing is stored: the UI registers the answer
// with PUT /v1/jobs. Answered by any server.
func (s *Server) jobParse(w http.ResponseWriter, r *http.Request) (any, error) {
	var req JobParseRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if len(req.JobSpec) > jobspec.MaxSize {
		return nil, badRequest("job_spec: %v", jobspec.ErrTooLarge)
	}
	job, err := jobspec.ParseAndValidate([]byte(req.JobSpec))
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return job, nil
}
