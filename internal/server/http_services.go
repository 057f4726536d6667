package server

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// The service catalog (GET /v1/services, /v1/service/{name},
// /v1/catalog): instances derived from allocation state at read time
// (structs.ServiceInstances). Blocking queries answer with a change index:
// the allocations table's index when the answer last changed, so a
// watcher (the agents' DNS caches) wakes when its answer changes, not on
// every status report of every copy.

// maxCatalogMemo bounds the remembered answers' digests (one per
// distinct query); when full, it starts over.
const maxCatalogMemo = 4096

// catalogMemo remembers, per query, the digest of the last answer and
// the index it first appeared at.
type catalogMemo struct {
	mu sync.Mutex
	m  map[string]catalogSeen
}

type catalogSeen struct {
	sum   uint64
	index uint64
}

// index returns the change index of an answer to query whose digest is
// sum, now that the table is at tableIndex. Callers whose tokens see
// different namespaces share a query's entry: their differing digests
// only cost extra wake-ups, never a missed one.
func (c *catalogMemo) index(query string, sum, tableIndex uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seen, ok := c.m[query]; ok && seen.sum == sum && seen.index <= tableIndex {
		return seen.index
	}
	if c.m == nil || len(c.m) >= maxCatalogMemo {
		c.m = map[string]catalogSeen{}
	}
	c.m[query] = catalogSeen{sum: sum, index: tableIndex}
	return tableIndex
}

func digest(v any) uint64 {
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(v)
	return h.Sum64()
}

// healthyOnly reads ?healthy: true (the default) keeps passing instances
// only; false gives every instance with its health.
func healthyOnly(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("healthy")
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("healthy: must be true or false (got %q)", v)
	}
	return b, nil
}

// instances lists the service instances the read may see: of namespace ns
// ("*": every one allowed), of service name ("" = all), with tag ("" = any).
func (s *Server) instances(ws memdb.WatchSet, snap *state.Snapshot, a *acl.ACL, ns, name, tag string, healthy bool) []structs.ServiceInstance {
	var out []structs.ServiceInstance
	nodes := map[string]*structs.Node{}
	for _, al := range snap.AllocsWatch(ws) {
		if al.Job == nil || (len(al.Job.Services) == 0 && !al.Job.HasGroups()) {
			continue // ServiceInstances looks at a group's services
		}
		aNS := structs.JobNamespace(al.JobID)
		if ns == structs.AllNamespaces {
			if a != nil && !a.AllowNamespace(aNS, acl.CapRead) {
				continue
			}
		} else if aNS != ns {
			continue
		}
		node, ok := nodes[al.NodeID]
		if !ok {
			node = snap.NodeByID(al.NodeID)
			nodes[al.NodeID] = node
		}
		for _, in := range structs.ServiceInstances(al, node) {
			if (name != "" && in.Service != name) || (tag != "" && !in.HasTag(tag)) || (healthy && !in.Healthy) {
				continue
			}
			out = append(out, in)
		}
	}
	structs.SortInstances(out)
	return out
}

// serviceList is GET /v1/services: each service with its instance counts.
func (s *Server) serviceList(w http.ResponseWriter, r *http.Request) (any, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return nil, err
	}
	a := s.aclOf(r)
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		all := s.instances(ws, snap, a, ns, "", "", false)
		type key struct{ name, ns string }
		byKey := map[key]*structs.ServiceSummary{}
		tags := map[key]map[string]bool{}
		for _, in := range all {
			k := key{in.Service, in.Namespace}
			sum := byKey[k]
			if sum == nil {
				sum = &structs.ServiceSummary{Name: in.Service, Namespace: in.Namespace}
				byKey[k], tags[k] = sum, map[string]bool{}
			}
			sum.Instances++
			if in.Healthy {
				sum.Healthy++
			}
			for _, t := range in.Tags {
				if !tags[k][t] {
					tags[k][t] = true
					sum.Tags = append(sum.Tags, t)
				}
			}
		}
		out := make([]*structs.ServiceSummary, 0, len(byKey))
		for _, v := range byKey {
			sort.Strings(v.Tags)
			out = append(out, v)
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Name != out[j].Name {
				return out[i].Name < out[j].Name
			}
			return out[i].Namespace < out[j].Namespace
		})
		idx := s.catalog.index("list|"+ns, digest(out), snap.TableIndex(state.TableAllocs))
		return idx, out, nil
	})
}

// serviceGet is GET /v1/service/{name}: the service's instances.
func (s *Server) serviceGet(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if !structs.ValidServiceName(name) {
		return nil, badRequest("service name %q: must be a DNS label (lower-case letters, digits and '-')", name)
	}
	return s.serveInstances(w, r, name)
}

// catalogGet is GET /v1/catalog: every instance in every namespace, for
// the agents' DNS (node read, as the allocations agents already see).
func (s *Server) catalogGet(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	q.Set("namespace", structs.AllNamespaces)
	r.URL.RawQuery = q.Encode()
	return s.serveInstances(w, r, "")
}

func (s *Server) serveInstances(w http.ResponseWriter, r *http.Request, name string) (any, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return nil, err
	}
	healthy, err := healthyOnly(r)
	if err != nil {
		return nil, err
	}
	tag := r.URL.Query().Get("tag")
	if tag != "" && !structs.ValidServiceName(tag) {
		return nil, badRequest("tag %q: must be a DNS label (lower-case letters, digits and '-')", tag)
	}
	a := s.aclOf(r)
	if r.URL.Path == "/v1/catalog" {
		a = nil // node read covers every namespace
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := s.instances(ws, snap, a, ns, name, tag, healthy)
		if out == nil {
			out = []structs.ServiceInstance{}
		}
		query := r.URL.Path + "|" + ns + "|" + tag + "|" + strconv.FormatBool(healthy)
		return s.catalog.index(query, digest(out), snap.TableIndex(state.TableAllocs)), out, nil
	})
}
