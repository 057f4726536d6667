package repl

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/resp"
)

// ReplicaOf makes the server a replica of the primary at addr (host:port),
// or, with addr "", a primary again (REPLICAOF NO ONE). It does not block
// on the network: a goroutine connects, syncs and applies the stream.
//
// Promotion keeps the data and the offset; the replication ID becomes the
// secondary ID (replid2) up to the current offset, so replicas of the old
// primary can continue from the new one with a partial resync (PSYNC2).
// Once it returns, no command of the previous link is applied any more.
func (r *State) ReplicaOf(addr string) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	if r.closed || addr == r.masterAddr {
		r.mu.Unlock()
		return
	}
	gen := r.gen.Add(1)
	old := r.masterConn
	r.masterConn, r.linkUp, r.syncing = nil, false, false
	wasReplica := r.masterAddr != ""
	r.masterAddr = addr
	var drop []*replLink
	if addr == "" {
		r.replid2, r.secondOff = r.replid, r.bl.end
		r.replid = newReplID()
	} else if !wasReplica {
		// our own replicas must follow the new primary
		for l := range r.links {
			l.drainTo.Store(r.bl.end)
			drop = append(drop, l)
		}
	}
	if addr != "" {
		r.wg.Add(1) // under r.mu: Close waits for it
	}
	replid := r.replid
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	r.dropLinks(drop)
	r.loading.Store(false)
	for _, ks := range r.cfg.DBs {
		ks.SetReplicaMode(addr != "")
	}
	r.replica.Store(addr != "")
	// writes paused by a manual failover go on: here, or with a redirect
	r.UnpauseWrites()
	if addr == "" {
		r.cfg.Logger.Printf("replication: now a primary (replid %s, offset %d)", replid, r.Offset())
		return
	}
	r.cfg.Logger.Printf("replication: replicating from %s", addr)
	go func() {
		defer r.wg.Done()
		r.replicaLoop(gen, addr)
	}()
}

// dropLinks ends the links of replicas of a server that became a replica:
// each sends the stream up to its drainTo first (the writes acknowledged
// before REPLICAOF reach them, as in Redis, whose replicas stay
// connected), for at most drainWait in all; then the connections close.
func (r *State) dropLinks(drop []*replLink) {
	if len(drop) == 0 {
		return
	}
	for _, l := range drop {
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
	t := time.NewTimer(drainWait)
	defer t.Stop()
	expired := false
	for _, l := range drop {
		if !expired {
			select {
			case <-l.done:
			case <-t.C:
				expired = true
			}
		}
		l.nc.Close()
	}
}

// drainWait bounds how long ReplicaOf waits for its replicas' links to
// send what they had not sent yet.
const drainWait = time.Second

// MasterAddr returns the primary this server replicates from, "" for a
// primary.
func (r *State) MasterAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.masterAddr
}

// LinkUp reports whether a replica is connected to its primary and
// streaming.
func (r *State) LinkUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.linkUp
}

// replicaLoop connects to the primary, syncs and applies its stream until
// the link is replaced, reconnecting after failures.
func (r *State) replicaLoop(gen int64, addr string) {
	backoff := 20 * time.Millisecond
	for r.gen.Load() == gen {
		err := r.syncOnce(gen, addr)
		if r.gen.Load() != gen {
			return
		}
		if err != nil {
			r.cfg.Logger.Printf("replication from %s: %v", addr, err)
		}
		select {
		case <-r.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// masterConn is the replica's side of the link.
type masterConn struct {
	r        *State
	gen      int64
	nc       net.Conn
	br       *bufio.Reader
	applyOne func(args [][]byte) string // runs a command through the server's command path
	tout     time.Duration
}

func (m *masterConn) send(args ...string) error {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	_ = m.nc.SetWriteDeadline(time.Now().Add(m.tout))
	_, err := m.nc.Write(resp.AppendCommand(nil, bs...))
	return err
}

func (m *masterConn) line() (string, error) {
	m.nc.SetReadDeadline(time.Now().Add(m.tout))
	for {
		l, err := m.br.ReadString('\n')
		if err != nil {
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l != "" { // newlines keep a link alive while a primary prepares a snapshot
			return l, nil
		}
	}
}

func (m *masterConn) call(args ...string) (string, error) {
	if err := m.send(args...); err != nil {
		return "", err
	}
	return m.line()
}

func (r *State) syncOnce(gen int64, addr string) error {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	if r.cfg.TLS != nil { // tls-replication
		tc := tls.Client(nc, r.cfg.TLS)
		_ = tc.SetDeadline(time.Now().Add(r.cfg.Timeout))
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return fmt.Errorf("TLS handshake with the primary: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		nc = tc
	}
	r.mu.Lock()
	if r.gen.Load() != gen {
		r.mu.Unlock()
		nc.Close()
		return nil
	}
	r.masterConn = nc
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.masterConn == nc {
			r.masterConn, r.linkUp, r.syncing = nil, false, false
		}
		r.mu.Unlock()
		nc.Close()
		r.loading.Store(false)
	}()
	m := &masterConn{r: r, gen: gen, nc: nc, br: bufio.NewReaderSize(nc, 64*1024),
		applyOne: r.cfg.NewApplier(), tout: r.cfg.Timeout}
	if pass := r.cfg.MasterAuth; pass != "" {
		auth := []string{"AUTH", pass}
		if u := r.cfg.MasterUser; u != "" {
			auth = []string{"AUTH", u, pass}
		}
		l, err := m.call(auth...)
		if err != nil {
			return err
		}
		if l != "+OK" {
			return fmt.Errorf("AUTH: %s", l)
		}
	}
	l, err := m.call("PING")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+") {
		return fmt.Errorf("PING: %s", l)
	}
	if l, err := m.call("REPLCONF", "listening-port", r.cfg.ListenPort()); err != nil {
		return err
	} else if l != "+OK" {
		r.cfg.Logger.Printf("replication from %s: REPLCONF listening-port: %s", addr, l)
	}
	if _, err := m.call("REPLCONF", "capa", "psync2"); err != nil {
		return err
	}
	r.mu.Lock()
	id, off := r.replid, r.bl.end
	r.mu.Unlock()
	l, err = m.call("PSYNC", id, strconv.FormatInt(off, 10))
	if err != nil {
		return err
	}
	full, nid, noff, err := parsePSyncReply(l)
	if err != nil {
		return err
	}
	if full {
		if err := m.fullSync(nid, noff); err != nil {
			return err
		}
	} else {
		r.mu.Lock()
		if nid != "" && nid != r.replid {
			// the primary changed its id (it was promoted): our history
			// is its secondary id's up to here
			r.replid2, r.secondOff, r.replid = r.replid, r.bl.end, nid
		}
		r.mu.Unlock()
		r.active.Store(true)
		r.cfg.Logger.Printf("replication from %s: partial resync at offset %d", addr, off)
	}
	r.mu.Lock()
	if r.gen.Load() == gen {
		r.linkUp = true
		r.lastIO = time.Now()
	}
	r.mu.Unlock()
	return m.stream()
}

// fullSync reads the snapshot payload and replaces the data with it.
func (m *masterConn) fullSync(id string, off int64) error {
	r := m.r
	r.mu.Lock()
	r.syncing = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.syncing = false
		r.mu.Unlock()
	}()
	l, err := m.line()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "$") {
		return fmt.Errorf("full sync: expected a bulk payload, got %q", command.Trunc([]byte(l), 64))
	}
	size, err := strconv.ParseInt(l[1:], 10, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("full sync: bad payload length %q", l)
	}
	r.netIn.Add(int64(len(l)) + 2) // "$<size>\r\n"
	payload := make([]byte, 0, min(size, 64<<20))
	chunk := make([]byte, 256*1024)
	for int64(len(payload)) < size {
		m.nc.SetReadDeadline(time.Now().Add(m.tout))
		n, err := m.br.Read(chunk[:min(int64(len(chunk)), size-int64(len(payload)))])
		r.netIn.Add(int64(n))
		payload = append(payload, chunk[:n]...)
		if err != nil {
			return fmt.Errorf("full sync: payload: %w", err)
		}
	}
	if len(payload) > 0 && payload[0] != '*' {
		return errors.New("full sync: the primary's snapshot is not in gantry's format (a Redis RDB? a gantry peer cannot replicate from redis-server)")
	}
	r.loading.Store(true)
	defer r.loading.Store(false)
	// FLUSHALL, then every command of the snapshot, each through the
	// normal path (so the replica's own log records them)
	// (the snapshot starts in database 0 and selects the others)
	if err := m.apply(nil, [][]byte{[]byte("FLUSHALL")}, [][]byte{[]byte("SELECT"), []byte("0")}); err != nil {
		return err
	}
	var args [][]byte
	pos := 0
	for pos < len(payload) {
		var n int
		args, n, err = resp.ParseCommand(payload[pos:], args)
		if err != nil || n == 0 || payload[pos] != '*' {
			return fmt.Errorf("full sync: snapshot corrupt at byte %d of %d", pos, len(payload))
		}
		pos += n
		if len(args) == 0 {
			continue
		}
		if err := m.apply(nil, args); err != nil {
			return err
		}
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.gen.Load() != m.gen {
		return errStaleLink
	}
	r.mu.Lock()
	r.replid, r.replid2, r.secondOff = id, noReplID, -1
	r.bl.reset(off)
	r.mu.Unlock()
	r.active.Store(true)
	r.cfg.Logger.Printf("replication: full sync of %d bytes done at offset %d", size, off)
	return nil
}

// apply runs commands from the primary through the normal command path,
// then appends raw (the bytes they came as) to this server's own stream
// so its offsets stay the primary's. A link of an older generation
// applies nothing.
func (m *masterConn) apply(raw []byte, cmds ...[][]byte) error {
	r := m.r
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.gen.Load() != m.gen {
		return errStaleLink
	}
	for _, args := range cmds {
		if msg := m.applyOne(args); msg != "" {
			// the primary ran it without error: the data differ
			r.cfg.Logger.Printf("replication: %s from the primary failed here: %s", command.Trunc(args[0], 32), command.Trunc([]byte(msg), 200))
		}
	}
	if len(raw) > 0 {
		r.feedPrimary(raw)
	}
	return nil
}

// stream applies the primary's stream; it sends REPLCONF ACK every second
// and when asked (GETACK).
func (m *masterConn) stream() error {
	r := m.r
	buf := make([]byte, 0, 64*1024)
	tmp := make([]byte, 64*1024)
	var (
		args   [][]byte
		inTx   bool
		tx     [][][]byte
		txRaw  []byte
		lastIO = time.Now()
	)
	ack := func() error {
		return m.send("REPLCONF", "ACK", strconv.FormatInt(r.Offset(), 10))
	}
	if err := ack(); err != nil {
		return err
	}
	nextAck := time.Now().Add(time.Second)
	for {
		if r.gen.Load() != m.gen {
			return nil
		}
		if time.Now().After(nextAck) {
			if err := ack(); err != nil {
				return err
			}
			nextAck = time.Now().Add(time.Second)
		}
		m.nc.SetReadDeadline(time.Now().Add(time.Second))
		n, err := m.br.Read(tmp)
		if n > 0 {
			r.netIn.Add(int64(n))
			lastIO = time.Now()
			r.mu.Lock()
			r.lastIO = lastIO
			r.mu.Unlock()
			buf = append(buf, tmp[:n]...)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(lastIO) > m.tout {
					return fmt.Errorf("no data from the primary for %v", m.tout)
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the primary closed the link")
			}
			return err
		}
		pos := 0
		for pos < len(buf) {
			var used int
			args, used, err = resp.ParseCommand(buf[pos:], args)
			if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			if used == 0 {
				break
			}
			raw := buf[pos : pos+used]
			pos += used
			switch {
			case len(args) == 0:
				if err := m.apply(raw); err != nil {
					return err
				}
			case command.EqualFold(args[0], "multi"):
				inTx, tx, txRaw = true, tx[:0], append(txRaw[:0], raw...)
			case inTx && !command.EqualFold(args[0], "exec"):
				cp := make([][]byte, len(args))
				for i, a := range args {
					cp[i] = append([]byte(nil), a...)
				}
				tx = append(tx, cp)
				txRaw = append(txRaw, raw...)
			case inTx: // EXEC: the whole transaction at once, offset after it
				inTx = false
				txRaw = append(txRaw, raw...)
				all := make([][][]byte, 0, len(tx)+2)
				all = append(all, [][]byte{bMULTI})
				all = append(all, tx...)
				all = append(all, [][]byte{bEXEC})
				if err := m.apply(txRaw, all...); err != nil {
					return err
				}
			case len(args) >= 2 && command.EqualFold(args[0], "replconf") && command.EqualFold(args[1], "getack"):
				if err := m.apply(raw); err != nil {
					return err
				}
				if err := ack(); err != nil {
					return err
				}
			case command.EqualFold(args[0], "ping"):
				if err := m.apply(raw); err != nil {
					return err
				}
			default:
				if err := m.apply(raw, args); err != nil {
					return err
				}
			}
		}
		buf = append(buf[:0], buf[pos:]...)
	}
}

// parsePSyncReply parses the primary's answer to PSYNC: "+FULLRESYNC id
// offset" (full is true) or "+CONTINUE [id]".
func parsePSyncReply(l string) (full bool, id string, off int64, err error) {
	f := strings.Fields(l)
	switch {
	case len(f) == 3 && f[0] == "+FULLRESYNC":
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || off < 0 || !validReplID(f[1]) {
			return false, "", 0, fmt.Errorf("bad PSYNC reply %q", command.Trunc([]byte(l), 128))
		}
		return true, f[1], off, nil
	case len(f) == 1 && f[0] == "+CONTINUE":
		return false, "", 0, nil
	case len(f) == 2 && f[0] == "+CONTINUE" && validReplID(f[1]):
		return false, f[1], 0, nil
	}
	return false, "", 0, fmt.Errorf("PSYNC: %s", command.Trunc([]byte(l), 128))
}

func validReplID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

var (
	bMULTI = []byte("MULTI")
	bEXEC  = []byte("EXEC")
)
