package repl

import (
	"net"
	"strconv"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// Role writes the reply to ROLE.
func (r *State) Role(w *resp.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.masterAddr != "" {
		host, port, _ := net.SplitHostPort(r.masterAddr)
		pn, _ := strconv.Atoi(port)
		state := "connect"
		switch {
		case r.syncing:
			state = "sync"
		case r.linkUp:
			state = "connected"
		case r.masterConn != nil:
			state = "connecting"
		}
		w.Array(5)
		w.BulkString("slave")
		w.BulkString(host)
		w.Int(int64(pn))
		w.BulkString(state)
		w.Int(r.bl.end)
		return
	}
	w.Array(3)
	w.BulkString("master")
	w.Int(r.bl.end)
	var online []*replLink
	for l := range r.links {
		if l.online.Load() {
			online = append(online, l)
		}
	}
	w.Array(len(online))
	for _, l := range online {
		w.Array(3)
		w.BulkString(l.ip)
		w.BulkString(l.port)
		w.BulkString(strconv.FormatInt(l.ack.Load(), 10))
	}
}

// Info returns the lines of INFO's Replication section.
func (r *State) Info() []string {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var lines []string
	if r.masterAddr != "" {
		host, port, _ := net.SplitHostPort(r.masterAddr)
		status, io := "down", int64(-1)
		if r.linkUp {
			status = "up"
		}
		if !r.lastIO.IsZero() {
			io = int64(now.Sub(r.lastIO).Seconds())
		}
		lines = append(lines, "role:slave", "master_host:"+host, "master_port:"+port,
			"master_link_status:"+status,
			"master_last_io_seconds_ago:"+strconv.FormatInt(io, 10),
			"master_sync_in_progress:"+strconv.Itoa(int(b2i(r.syncing))),
			"slave_read_repl_offset:"+strconv.FormatInt(r.bl.end, 10),
			"slave_repl_offset:"+strconv.FormatInt(r.bl.end, 10),
			"slave_priority:100", "slave_read_only:1", "replica_announced:1")
	} else {
		lines = append(lines, "role:master")
	}
	var online []*replLink
	for l := range r.links {
		if l.online.Load() {
			online = append(online, l)
		}
	}
	lines = append(lines, "connected_slaves:"+strconv.Itoa(len(online)))
	for i, l := range online {
		lag := now.Unix() - l.ackTime.Load()
		lines = append(lines, "slave"+strconv.Itoa(i)+":ip="+l.ip+",port="+l.port+
			",state=online,offset="+strconv.FormatInt(l.ack.Load(), 10)+",lag="+strconv.FormatInt(lag, 10))
	}
	first := r.bl.start + 1
	if r.bl.end == r.bl.start {
		first = r.bl.end + 1
	}
	lines = append(lines, "master_failover_state:no-failover",
		"master_replid:"+r.replid, "master_replid2:"+r.replid2,
		"master_repl_offset:"+strconv.FormatInt(r.bl.end, 10),
		"second_repl_offset:"+strconv.FormatInt(r.secondOff, 10),
		"repl_backlog_active:"+strconv.Itoa(int(b2i(r.active.Load()))),
		"repl_backlog_size:"+strconv.Itoa(len(r.bl.buf)),
		"repl_backlog_first_byte_offset:"+strconv.FormatInt(first, 10),
		"repl_backlog_histlen:"+strconv.FormatInt(r.bl.end-r.bl.start, 10),
		"gantry_full_syncs:"+strconv.FormatInt(r.syncs, 10),
		"gantry_partial_syncs:"+strconv.FormatInt(r.partials, 10),
		"gantry_partial_sync_errors:"+strconv.FormatInt(r.partialErrs, 10))
	return lines
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ResetStats zeroes the sync counters (CONFIG RESETSTAT zeroes Redis's
// sync_full, sync_partial_ok and sync_partial_err).
func (r *State) ResetStats() {
	r.mu.Lock()
	r.syncs, r.partials, r.partialErrs = 0, 0, 0
	r.mu.Unlock()
	r.netIn.Store(0)
	r.netOut.Store(0)
}

// NetBytes are the replication bytes read from the primary and written
// to replicas so far.
func (r *State) NetBytes() (in, out int64) { return r.netIn.Load(), r.netOut.Load() }
