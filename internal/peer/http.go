package peer

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gantry-project/gantry/web"
)

// The peer's small HTTP side (gantry peer --http-addr, off by default):
// the web UI's Peers page and the JSON it reads, GET /v1/peer/status.
// It reads the cluster layer's Status (a copy the owner goroutine
// makes), never the node itself, and changes nothing.

// HTTPStatus is GET /v1/peer/status.
type HTTPStatus struct {
	ID      string `json:"id,omitempty"`
	Addr    string `json:"addr"`
	Cluster bool   `json:"cluster"`
	// OK is cluster_state:ok.
	OK            bool   `json:"ok"`
	CurrentEpoch  uint64 `json:"current_epoch,omitempty"`
	SlotsAssigned int    `json:"slots_assigned"`
	SlotsPFail    int    `json:"slots_pfail"`
	SlotsFail     int    `json:"slots_fail"`
	// Size is the number of primaries owning slots.
	Size  int              `json:"size"`
	Peers []HTTPPeerStatus `json:"peers"`
	// Migrating and Importing are this peer's open slots.
	Migrating map[uint16]string `json:"migrating,omitempty"`
	Importing map[uint16]string `json:"importing,omitempty"`
	// Commands is the commands this peer served since it started; Time
	// is when it was read (unix ms): two readings give ops/s.
	Commands int64 `json:"commands"`
	Time     int64 `json:"time"`
	// Failovers counts the promotions of a replica to primary this HTTP
	// side saw between two of its readings (since it started).
	Failovers int `json:"failovers"`
}

// HTTPPeerStatus is one peer as this one sees it.
type HTTPPeerStatus struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	BusPort int    `json:"bus_port"`
	Role    string `json:"role"` // primary or replica
	Primary string `json:"primary,omitempty"`
	// Link is connected, pfail (silent past the node timeout) or fail
	// (a majority of primaries agreed).
	Link           string      `json:"link"`
	ConfigEpoch    uint64      `json:"config_epoch"`
	Offset         uint64      `json:"offset"`
	LastSeen       int64       `json:"last_seen,omitempty"` // unix ms
	FailureReports int         `json:"failure_reports"`
	Slots          [][2]uint16 `json:"slots,omitempty"`
	Self           bool        `json:"self,omitempty"`
}

// httpSide serves the UI and the status of one peer.
type httpSide struct {
	p   *Peer
	now func() time.Time

	mu        sync.Mutex
	roles     map[NodeID]Role // guarded by mu: roles at the last reading
	failovers int             // guarded by mu
}

// HTTPHandler serves the UI at /ui/ (opening on its Peers page), / as a
// redirect there, and GET /v1/peer/status.
func (p *Peer) HTTPHandler() http.Handler {
	hs := &httpSide{p: p, now: time.Now, roles: map[NodeID]Role{}}
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", web.Handler("/ui/"))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/#/peers", http.StatusFound))
	mux.HandleFunc("GET /v1/peer/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := hs.status()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "peer status: " + err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	return mux
}

func (hs *httpSide) status() (*HTTPStatus, error) {
	p := hs.p
	out := &HTTPStatus{Addr: p.Addr().String(), Commands: p.srv.CommandsProcessed(), Time: hs.now().UnixMilli(), Peers: []HTTPPeerStatus{}}
	if p.cluster == nil {
		return out, nil
	}
	st, err := p.cluster.Status()
	if err != nil {
		return nil, err
	}
	out.Cluster, out.ID, out.OK, out.CurrentEpoch = true, string(st.ID), st.OK, st.CurrentEpoch
	out.SlotsAssigned, out.SlotsPFail, out.SlotsFail, out.Size = st.SlotsAssigned, st.SlotsPFail, st.SlotsFail, st.Size
	for s, d := range st.Migrating {
		if out.Migrating == nil {
			out.Migrating = map[uint16]string{}
		}
		out.Migrating[s] = string(d)
	}
	for s, d := range st.Importing {
		if out.Importing == nil {
			out.Importing = map[uint16]string{}
		}
		out.Importing[s] = string(d)
	}
	out.Failovers = hs.observe(st.Peers)
	for _, ps := range st.Peers {
		hp := HTTPPeerStatus{ID: string(ps.ID), Addr: ps.Addr, BusPort: ps.BusPort, Role: "replica", Primary: string(ps.Primary),
			Link: "connected", ConfigEpoch: ps.ConfigEpoch, Offset: ps.Offset, FailureReports: ps.FailureReports, Self: ps.ID == st.ID}
		if ps.Role == RolePrimary {
			hp.Role = "primary"
		}
		switch {
		case ps.Fail:
			hp.Link = "fail"
		case ps.PFail:
			hp.Link = "pfail"
		}
		if !ps.LastSeen.IsZero() {
			hp.LastSeen = ps.LastSeen.UnixMilli()
		}
		for _, r := range ps.Slots {
			hp.Slots = append(hp.Slots, [2]uint16{r.Start, r.End})
		}
		out.Peers = append(out.Peers, hp)
	}
	return out, nil
}

// observe counts the peers that were replicas at the last reading and are
// primaries now (failovers), keeps the roles of the peers known now, and
// returns the count so far.
func (hs *httpSide) observe(peers []PeerStatus) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	roles := make(map[NodeID]Role, len(peers))
	for _, ps := range peers {
		if prev, ok := hs.roles[ps.ID]; ok && prev == RoleReplica && ps.Role == RolePrimary {
			hs.failovers++
		}
		roles[ps.ID] = ps.Role
	}
	hs.roles = roles
	return hs.failovers
}
