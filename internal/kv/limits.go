package kv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// The limits on what one client may make the server hold (docs/kv.md,
// "Limits"): descriptors (maxclients), input (proto-max-bulk-len,
// client-query-buffer-limit, the caps on unauthenticated clients in
// internal/resp), output (client-output-buffer-limit) and idle time
// (timeout). They are settable at run time, so they are atomics read where
// they apply.

const (
	// reservedFDs are the descriptors kept for the server itself (log
	// files, event loops, replication and MIGRATE links, the cluster bus)
	// when maxclients comes from the descriptor limit, as Redis's
	// CONFIG_MIN_RESERVED_FDS.
	reservedFDs = 32
	// defaultMaxClients is Redis's default and the most the descriptor
	// limit gives by default.
	defaultMaxClients = 10000
	// readBufSize is the read buffer of a client; bigger requests grow it
	// for as long as they take.
	readBufSize = 16 << 10
	// keptBufSize is the largest read or reply buffer a client keeps
	// between requests; a bigger one is dropped once it is empty, so the
	// memory of a big request goes back to the heap when it is done.
	keptBufSize = 64 << 10
	// keptArgs is the most argument slots a client keeps after a command.
	keptArgs = 1024
	// outputPause: while more than max(outputPause, the hard limit, the
	// soft limit + outputPause) bytes of a client's replies are unsent, the server runs no
	// more of its pipelined commands (and reads none) until the socket
	// takes them. With Redis's default "normal 0 0 0" this bounds what a
	// client that never reads can make the server hold, without closing
	// it. Below it no limit is checked, which keeps the check off the
	// path of ordinary replies.
	outputPause = 64 << 10
	// partialScanMin: an incomplete command at least this long is scanned
	// incrementally (resp.Partial) instead of being parsed again on every
	// read.
	partialScanMin = readBufSize
	// idleRelease: a client idle this long gives its buffers back.
	idleRelease = 2 * time.Second
)

// Output buffer classes of client-output-buffer-limit.
const (
	classNormal = iota
	classReplica
	classPubsub
	numClasses
)

var classNames = [numClasses]string{"normal", "slave", "pubsub"}

// outputLimit is one class of client-output-buffer-limit.
type outputLimit struct {
	hard, soft atomic.Int64 // bytes, 0: none
	softSecs   atomic.Int64
}

// limits are the settable limits of a server.
type limits struct {
	maxClients atomic.Int64
	timeoutMs  atomic.Int64 // idle clients are closed after this; 0: never
	maxBulk    atomic.Int64 // proto-max-bulk-len
	queryLimit atomic.Int64 // client-query-buffer-limit
	output     [numClasses]outputLimit
}

// Redis's default client-output-buffer-limit.
const defaultOutputLimits = "normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60"

func (l *limits) init(cfg *Config) error {
	l.maxClients.Store(int64(cfg.MaxClients))
	l.timeoutMs.Store(cfg.Timeout.Milliseconds())
	l.maxBulk.Store(cfg.ProtoMaxBulkLen)
	l.queryLimit.Store(cfg.ClientQueryBufferLimit)
	if err := l.setOutput(defaultOutputLimits); err != nil {
		return err
	}
	if cfg.ClientOutputBufferLimit != "" {
		if err := l.setOutput(cfg.ClientOutputBufferLimit); err != nil {
			return fmt.Errorf("client-output-buffer-limit: %w", err)
		}
	}
	return nil
}

// setOutput applies a client-output-buffer-limit value: one or more
// "class hard soft seconds" groups; classes not named keep their limits.
func (l *limits) setOutput(v string) error {
	f := strings.Fields(v)
	if len(f) == 0 || len(f)%4 != 0 {
		return errors.New("want groups of <class> <hard> <soft> <soft seconds>")
	}
	type group struct {
		class            int
		hard, soft, secs int64
	}
	var gs []group
	for i := 0; i < len(f); i += 4 {
		var class int
		switch strings.ToLower(f[i]) {
		case "normal":
			class = classNormal
		case "replica", "slave":
			class = classReplica
		case "pubsub":
			class = classPubsub
		default:
			return fmt.Errorf("unknown class %q (want normal, replica or pubsub)", f[i])
		}
		hard, err := parseMemory(f[i+1])
		if err != nil {
			return err
		}
		soft, err := parseMemory(f[i+2])
		if err != nil {
			return err
		}
		secs, err := strconv.ParseInt(f[i+3], 10, 64)
		if err != nil || secs < 0 {
			return fmt.Errorf("soft seconds %q: want a number >= 0", f[i+3])
		}
		gs = append(gs, group{class, hard, soft, secs})
	}
	for _, g := range gs { // all or nothing
		o := &l.output[g.class]
		o.hard.Store(g.hard)
		o.soft.Store(g.soft)
		o.softSecs.Store(g.secs)
	}
	return nil
}

// outputString is client-output-buffer-limit as CONFIG GET shows it.
func (l *limits) outputString() string {
	var b strings.Builder
	for i := range l.output {
		o := &l.output[i]
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s %d %d %d", classNames[i], o.hard.Load(), o.soft.Load(), o.softSecs.Load())
	}
	return b.String()
}

// ParseMemory parses a byte count as Redis's configuration does: a number
// with an optional unit (k=1000, kb=1024, m, mb, g, gb; any case).
func ParseMemory(s string) (int64, error) { return parseMemory(s) }

func parseMemory(s string) (int64, error) {
	l := strings.ToLower(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}} {
		if strings.HasSuffix(l, u.suffix) {
			l, mult = strings.TrimSuffix(l, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(l, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("memory size %q: want a number of bytes >= 0 with an optional unit (kb, mb, gb)", s)
	}
	return n * mult, nil
}

// maxClientsFor returns the maxclients a descriptor limit allows (0:
// unknown): as Redis, the limit less the reserve, at most want (10000 when
// want is 0), at least 1.
func maxClientsFor(nofile uint64, want int) int {
	if want <= 0 {
		want = defaultMaxClients
	}
	if nofile == 0 {
		return want
	}
	if nofile <= reservedFDs+1 {
		return 1
	}
	return int(min(nofile-reservedFDs, uint64(want)))
}

// parseLimits returns the parser's limits for the client now.
func (c *Client) parseLimits() resp.Limits {
	return resp.Limits{MaxBulk: c.srv.lim.maxBulk.Load(), Unauthenticated: !c.authed}
}

// checkOutput applies the limits of the normal class to a client with out
// bytes of unsent replies (out > outputPause): over the hard limit, or
// over the soft limit for longer than its seconds, the client is closed
// without its replies, as Redis does; otherwise, over the pause threshold,
// it runs no more commands until the socket takes the replies.
func (c *Client) checkOutput(out int, now int64) procResult {
	o := &c.srv.lim.output[classNormal]
	hard, soft := o.hard.Load(), o.soft.Load()
	if hard > 0 && int64(out) > hard {
		c.closeForOutput(out, "hard limit "+strconv.FormatInt(hard, 10))
		return procClose
	}
	if c.softOver(out, soft, o.softSecs.Load(), now) {
		c.closeForOutput(out, "soft limit "+strconv.FormatInt(soft, 10)+" for more than "+
			strconv.FormatInt(o.softSecs.Load(), 10)+" s")
		return procClose
	}
	if int64(out) > pauseAt(hard, soft) {
		return procOut
	}
	return procMore
}

// pauseAt is the unsent bytes over which a client's commands wait: past
// the soft limit by a margin, so a client that stops reading stays over
// it and its seconds run, and never below the hard limit.
func pauseAt(hard, soft int64) int64 { return max(outputPause, hard, soft+outputPause) }

// outputPaused reports whether a client's unsent replies are over pauseAt.
func (c *Client) outputPaused() bool {
	o := &c.srv.lim.output[classNormal]
	return int64(len(c.W.B)-c.wpos) > pauseAt(o.hard.Load(), o.soft.Load())
}

// softOver keeps the time a client went over the soft limit and reports
// whether it has been over it for longer than secs.
func (c *Client) softOver(out int, soft, secs, now int64) bool {
	if soft <= 0 || int64(out) <= soft {
		c.softSince = 0
		return false
	}
	if c.softSince == 0 {
		c.softSince = now
		return false
	}
	return now-c.softSince > secs*1000
}

func (c *Client) closeForOutput(out int, why string) {
	c.srv.outputLimitCloses.Add(1)
	c.srv.logger.Printf("closing client id=%d addr=%s: %d bytes of replies unsent, over the %s (client-output-buffer-limit)",
		c.id, c.nc.RemoteAddr(), out, why)
	c.W.B = c.W.B[:c.wpos] // its replies are dropped, not sent
	c.closing = true
}

// queryOver reports whether a client holds more input than
// client-query-buffer-limit (its unparsed bytes and the commands its
// transaction queued), and logs and counts it.
func (c *Client) queryOver(extra int) bool {
	limit := c.srv.lim.queryLimit.Load()
	held := int64(c.rend-c.rstart) + c.queuedBytes + int64(extra)
	if held <= limit {
		return false
	}
	c.srv.queryLimitCloses.Add(1)
	c.srv.logger.Printf("closing client id=%d addr=%s: %d bytes of input held, over client-query-buffer-limit %d",
		c.id, c.nc.RemoteAddr(), held, limit)
	return true
}
