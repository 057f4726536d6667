package kv

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
// [AUTH password] [AUTH2 username password] [KEYS key ...]
//
// MIGRATE does network I/O, so it never runs on an event loop: like a
// blocking command it moves its connection to a goroutine of its own
// (c.detach) and runs again there. It holds no shard lock while it waits
// on the network. Instead, while the keys travel they are marked "moving"
// in their shards: reads still run, but any command that would change one
// of them gets TRYAGAIN (go-redis and other cluster clients retry it), so
// the value the target receives is the value the source deletes. Redis
// gets the same guarantee by blocking the whole server for the transfer.

// errMoving is the reply to a write of a key that MIGRATE is sending.
const errMoving = "TRYAGAIN Key is being migrated, try again"

// migrateKeys returns the keys of a MIGRATE command: args[3], or the
// arguments after KEYS (options before KEYS are skipped with their values).
func migrateKeys(args [][]byte, dst [][]byte) [][]byte {
	if len(args) < 6 {
		return dst
	}
	for i := 6; i < len(args); i++ {
		switch {
		case command.EqualFold(args[i], "auth"):
			i++
		case command.EqualFold(args[i], "auth2"):
			i += 2
		case command.EqualFold(args[i], "keys"):
			if len(args[3]) != 0 {
				return dst
			}
			return append(dst, args[i+1:]...)
		}
	}
	if len(args[3]) == 0 {
		return dst
	}
	return append(dst, args[3])
}

type migrateOpts struct {
	addr     string
	db       int64
	timeout  time.Duration
	copy     bool
	replace  bool
	authUser []byte
	authPass []byte
	keys     [][]byte
}

// parseMigrate parses the arguments, replying the Redis error when they
// are wrong.
func (c *Client) parseMigrate() (migrateOpts, bool) {
	a := c.Args
	var o migrateOpts
	port, ok := command.ParseInt(a[2])
	if !ok || port <= 0 || port > 65535 {
		c.W.Error(command.ErrNotInt)
		return o, false
	}
	o.addr = net.JoinHostPort(string(a[1]), strconv.FormatInt(port, 10))
	if o.db, ok = c.ArgInt(4); !ok {
		return o, false
	}
	ms, ok := c.ArgInt(5)
	if !ok {
		return o, false
	}
	if ms <= 0 {
		ms = 1000
	}
	o.timeout = time.Duration(ms) * time.Millisecond
	keysAt := 0
	for i := 6; i < len(a) && keysAt == 0; i++ {
		switch {
		case command.EqualFold(a[i], "copy"):
			o.copy = true
		case command.EqualFold(a[i], "replace"):
			o.replace = true
		case command.EqualFold(a[i], "auth"):
			if i+1 >= len(a) {
				c.W.Error(command.ErrSyntax)
				return o, false
			}
			o.authUser, o.authPass = nil, a[i+1]
			i++
		case command.EqualFold(a[i], "auth2"):
			if i+2 >= len(a) {
				c.W.Error(command.ErrSyntax)
				return o, false
			}
			o.authUser, o.authPass = a[i+1], a[i+2]
			i += 2
		case command.EqualFold(a[i], "keys"):
			if len(a[3]) != 0 {
				c.W.Error("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string")
				return o, false
			}
			keysAt = i + 1
		default:
			c.W.Error(command.ErrSyntax)
			return o, false
		}
	}
	if keysAt > 0 {
		o.keys = a[keysAt:]
	} else {
		o.keys = a[3:4]
	}
	return o, true
}

type migrateItem struct {
	key     []byte
	ttl     int64 // ms left, 0 for none
	payload []byte
}

func cmdMigrate(c *Client) {
	o, ok := c.parseMigrate()
	if !ok {
		return
	}
	if c.inLoop { // network I/O: leave the event loop first
		c.detach = true
		return
	}
	s := c.srv
	// c.Keys holds the same keys (migrateKeys); it must not alias c.Args
	c.Now = s.nowMs()
	c.lockKeys()
	if c.Track.MovingLocked(c.Keys) {
		c.unlock()
		c.W.Error(errMoving)
		return
	}
	var items []migrateItem
	seen := make(map[string]bool, len(o.keys))
	for _, k := range o.keys {
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		e := c.Lookup(k)
		if e == nil {
			continue
		}
		it := migrateItem{key: k, payload: keyspace.Dump(e)}
		if it.payload == nil {
			continue // a value type without a DUMP format stays here
		}
		if e.Expiry() != 0 {
			it.ttl = max(e.Expiry()-c.Now, 1)
		}
		items = append(items, it)
		c.Track.SetMovingLocked(k, true)
	}
	c.unlock()
	if len(items) == 0 {
		c.W.Simple("NOKEY")
		return
	}
	oks, targetErr, ioErr := s.migrations.send(s.done, o, items, s.cfg.Cluster != nil)

	c.Now = s.nowMs()
	c.ResetRecord()
	c.lockKeys()
	var del [][]byte
	for i, it := range items {
		c.Track.SetMovingLocked(it.key, false)
		if oks[i] && !o.copy && c.Lookup(it.key) != nil {
			c.KS.DeleteLocked(it.key)
			del = append(del, it.key)
		}
	}
	if len(del) > 0 {
		c.Dirty += len(del)
		c.Log(append([][]byte{bDEL}, del...)...)
	}
	c.commitLocked()
	c.unlock()
	switch {
	case ioErr != nil:
		c.W.Error("IOERR error or timeout " + ioErr.Error() + " target instance")
	case targetErr != "":
		c.W.Error("ERR Target instance replied with error: " + targetErr)
	default:
		c.W.OK()
	}
}

// migrateIdle is how long an unused connection to a MIGRATE target stays
// open (Redis: 10 s).
const migrateIdle = 10 * time.Second

// migrateConns caches connections to MIGRATE targets. A connection is
// taken out of the cache while a MIGRATE uses it, so each is used by one
// command at a time.
type migrateConns struct {
	tls    *tls.Config // tls-cluster: dial targets with TLS (security.go)
	mu     sync.Mutex
	idle   map[string]*migrateConn
	closed bool // the server closed: connections are not kept
}

type migrateConn struct {
	nc      net.Conn
	rd      *bufio.Reader
	lastUse time.Time
}

func (m *migrateConns) take(addr string) *migrateConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.idle[addr]
	delete(m.idle, addr)
	return mc
}

func (m *migrateConns) put(addr string, mc *migrateConn) {
	mc.lastUse = time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		mc.nc.Close()
		return
	}
	if m.idle == nil {
		m.idle = make(map[string]*migrateConn)
	}
	if old := m.idle[addr]; old != nil {
		old.nc.Close()
	}
	m.idle[addr] = mc
}

// expire closes connections idle for migrateIdle; all (and any returned
// later) when all is set.
func (m *migrateConns) expire(all bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = m.closed || all
	for a, mc := range m.idle {
		if all || time.Since(mc.lastUse) > migrateIdle {
			mc.nc.Close()
			delete(m.idle, a)
		}
	}
}

// migrateCacheLoop closes idle MIGRATE connections once a second.
func (s *Server) migrateCacheLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			s.migrations.expire(true)
			return
		case <-t.C:
			s.migrations.expire(false)
		}
	}
}

// errTargetReply is a reply from the target that is an error.
type errTargetReply string

func (e errTargetReply) Error() string { return string(e) }

// send transfers items to the target: AUTH (when given), SELECT (when
// not db 0), then RESTORE (RESTORE-ASKING in cluster mode) per key, all
// pipelined. It returns which keys the target accepted, the first error
// the target replied, or an I/O error (then nothing is known to be
// accepted). A failure on a cached connection before any reply is read
// is retried once on a new connection, as Redis does.
func (m *migrateConns) send(done <-chan struct{}, o migrateOpts, items []migrateItem, asking bool) (oks []bool, targetErr string, ioErr error) {
	var req []byte
	nreplies := 0
	if o.authPass != nil {
		if o.authUser != nil {
			req = resp.AppendCommand(req, []byte("AUTH"), o.authUser, o.authPass)
		} else {
			req = resp.AppendCommand(req, []byte("AUTH"), o.authPass)
		}
		nreplies++
	}
	if o.db != 0 {
		req = resp.AppendCommand(req, []byte("SELECT"), strconv.AppendInt(nil, o.db, 10))
		nreplies++
	}
	name := bRESTORE
	if asking {
		name = []byte("RESTORE-ASKING")
	}
	for _, it := range items {
		args := [][]byte{name, it.key, strconv.AppendInt(nil, it.ttl, 10), it.payload}
		if o.replace {
			args = append(args, bREPLACE)
		}
		req = resp.AppendCommand(req, args...)
	}
	for attempt := 0; ; attempt++ {
		mc := m.take(o.addr)
		cached := mc != nil
		if mc == nil {
			d := net.Dialer{Timeout: o.timeout}
			nc, err := d.Dial("tcp", o.addr)
			if err != nil {
				return make([]bool, len(items)), "", errors.New("connecting to")
			}
			if nc, err = migrateTLS(nc, m.tls, o.timeout); err != nil { // tls-cluster (security.go)
				return make([]bool, len(items)), "", errors.New("connecting to")
			}
			mc = &migrateConn{nc: nc, rd: bufio.NewReader(nc)}
		}
		// a closing server does not wait for the target's timeout
		finished := make(chan struct{})
		go func() {
			select {
			case <-done:
				mc.nc.Close()
			case <-finished:
			}
		}()
		oks, read, targetErr, ioErr := exchange(mc, req, nreplies, len(items), o.timeout)
		close(finished)
		if ioErr == nil {
			m.put(o.addr, mc)
			return oks, targetErr, nil
		}
		mc.nc.Close()
		if cached && read == 0 && attempt == 0 {
			select {
			case <-done:
			default:
				continue
			}
		}
		return oks, targetErr, ioErr
	}
}

// exchange writes req and reads the replies: first the nreplies of AUTH
// and SELECT, then one per item. read counts the replies read.
func exchange(mc *migrateConn, req []byte, nreplies, nitems int, timeout time.Duration) (oks []bool, read int, targetErr string, ioErr error) {
	oks = make([]bool, nitems)
	if err := mc.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return oks, 0, "", errors.New("writing to")
	}
	if _, err := mc.nc.Write(req); err != nil {
		return oks, 0, "", errors.New("writing to")
	}
	setupFailed := ""
	for i := 0; i < nreplies+nitems; i++ {
		mc.nc.SetReadDeadline(time.Now().Add(timeout))
		err := readReply(mc.rd)
		var te errTargetReply
		switch {
		case errors.As(err, &te):
			if targetErr == "" {
				targetErr = string(te)
			}
			if i < nreplies {
				setupFailed = string(te)
			}
		case err != nil:
			return oks, read, targetErr, errors.New("reading from")
		default:
			if i >= nreplies && setupFailed == "" {
				oks[i-nreplies] = true
			}
		}
		read++
	}
	// every use sets its own deadlines; the idle connection keeps these
	return oks, read, targetErr, nil
}

// readReply reads one RESP reply; an error reply is an errTargetReply.
func readReply(rd *bufio.Reader) error {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return fmt.Errorf("bad reply %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', ':', '_', '#', ',', '(':
		return nil
	case '-':
		return errTargetReply(string(body))
	case '$', '!', '=':
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return fmt.Errorf("bad bulk length %q", body)
		}
		if n < 0 {
			return nil
		}
		_, err = rd.Discard(n + 2)
		return err
	case '*', '%', '~', '>':
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return fmt.Errorf("bad array length %q", body)
		}
		if line[0] == '%' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := readReply(rd); err != nil && !errors.As(err, new(errTargetReply)) {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad reply %q", line)
}

var (
	bRESTORE = []byte("RESTORE")
	bREPLACE = []byte("REPLACE")
)
