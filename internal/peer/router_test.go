package peer

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv"
)

// routerFor builds a Router over the simulated node id without a network:
// only its routing snapshot is used.
func routerFor(t testing.TB, nw *simNet, id NodeID, requireFull bool) *Router {
	t.Helper()
	var rt atomic.Pointer[routes]
	rt.Store(buildRoutes(nw.nodes[id], requireFull))
	return &Router{rt: &rt}
}

// keyIn returns a key whose slot lies in [lo, hi].
func keyIn(t testing.TB, lo, hi uint16) string {
	t.Helper()
	for i := 0; i < 100000; i++ {
		k := "k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i)
		if s := KeySlot([]byte(k)); s >= lo && s <= hi {
			return k
		}
	}
	t.Fatalf("no key in slots %d-%d", lo, hi)
	return ""
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

func TestRoute(t *testing.T) {
	nw := newSimNet(t, 4, 1)
	nw.shards(3) // node 3 replicates node 0 (slots 0-5460)
	mine := keyIn(t, 0, 5460)
	other := keyIn(t, 5461, 10922)
	otherSlot := KeySlot([]byte(other))
	tests := []struct {
		name string
		at   int
		req  kv.RouteRequest
		want string // prefix
	}{
		{"own slot runs", 0, kv.RouteRequest{Keys: [][]byte{[]byte(mine)}, Write: true}, ""},
		{"other slot moves", 0, kv.RouteRequest{Keys: [][]byte{[]byte(other)}}, "MOVED " + itoa(int(otherSlot)) + " 127.0.0.1:7001"},
		{"cross slot", 0, kv.RouteRequest{Keys: [][]byte{[]byte(mine), []byte(other)}}, "CROSSSLOT "},
		{"hash tag same slot", 0, kv.RouteRequest{Keys: [][]byte{[]byte("{" + mine + "}a"), []byte("{" + mine + "}b")}}, ""},
		{"replica read without READONLY moves", 3, kv.RouteRequest{Keys: [][]byte{[]byte(mine)}}, "MOVED "},
		{"replica READONLY read runs", 3, kv.RouteRequest{Keys: [][]byte{[]byte(mine)}, ReadOnly: true}, ""},
		{"replica READONLY write moves", 3, kv.RouteRequest{Keys: [][]byte{[]byte(mine)}, ReadOnly: true, Write: true}, "MOVED "},
		{"replica READONLY other shard moves", 3, kv.RouteRequest{Keys: [][]byte{[]byte(other)}, ReadOnly: true}, "MOVED "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := routerFor(t, nw, nw.ids[tt.at], true).Route(tt.req)
			if tt.want == "" && got != "" || tt.want != "" && !strings.HasPrefix(got, tt.want) {
				t.Errorf("Route = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRouteClusterDown(t *testing.T) {
	nw := newSimNet(t, 3, 2)
	nw.shards(3)
	key := [][]byte{[]byte(keyIn(t, 0, 5460))}
	// an unassigned slot: down with full coverage required, served without
	nw.must(nw.do(nw.ids[0], Op{Kind: OpDelSlots, Slots: []SlotRange{{16383, 16383}}}))
	if got := routerFor(t, nw, nw.ids[0], true).Route(kv.RouteRequest{Keys: key}); !strings.HasPrefix(got, "CLUSTERDOWN") {
		t.Errorf("uncovered, full coverage required: %q", got)
	}
	r := routerFor(t, nw, nw.ids[0], false)
	if got := r.Route(kv.RouteRequest{Keys: key}); got != "" {
		t.Errorf("uncovered, partial coverage allowed: %q", got)
	}
	if got := r.Route(kv.RouteRequest{Keys: [][]byte{[]byte(keyIn(t, 16383, 16383))}}); !strings.HasPrefix(got, "CLUSTERDOWN Hash slot not served") {
		t.Errorf("unassigned slot: %q", got)
	}
	// cut off from both other primaries: the minority side stops serving
	nw.isolate(nw.ids[0])
	nw.run(1500 * time.Millisecond)
	if got := routerFor(t, nw, nw.ids[0], false).Route(kv.RouteRequest{Keys: key, Write: true}); !strings.HasPrefix(got, "CLUSTERDOWN") {
		t.Errorf("isolated primary: %q, want CLUSTERDOWN", got)
	}
}

// BenchmarkRoute is the per-command cost of routing a key this node
// serves: one atomic load of the routing snapshot, no lock, no allocation.
func BenchmarkRoute(b *testing.B) {
	nw := newSimNet(b, 3, 1)
	nw.shards(3)
	r := routerFor(b, nw, nw.ids[0], true)
	req := kv.RouteRequest{Keys: [][]byte{[]byte(keyIn(b, 0, 5460))}, Write: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r.Route(req) != "" {
			b.Fatal("not served here")
		}
	}
}
