//go:build linux

package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Values are derived from their keys, so a reader can check any value it
// gets and the final check needs no copy of what was written.
func durableValue(key string) string {
	return key + "|" + strings.Repeat(string(rune('a'+hash(key)%26)), 24)
}

func cacheValue(key string, n int) string {
	return key + "|" + strings.Repeat(string(rune('a'+hash(key)%26)), n)
}

func bigValue(key string) string {
	return key + "|" + strings.Repeat(string(rune('A'+hash(key)%26)), bigSize)
}

func hash(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// refusal is why a write was not acknowledged: the only two answers the
// soak accepts for a write besides success.
type refusal int

const (
	acked refusal = iota
	refusedMisconf
	refusedOOM
	unexpected
)

// classify sorts a write's outcome. A transaction is refused when one of
// its commands was (the queued command's error, or EXECABORT naming it).
func classify(errs ...error) refusal {
	r := acked
	for _, err := range errs {
		if err == nil {
			continue
		}
		msg := err.Error()
		switch {
		case strings.HasPrefix(msg, "MISCONF "), strings.Contains(msg, "because of: MISCONF"):
			r = max(r, refusedMisconf)
		case strings.HasPrefix(msg, "OOM "), strings.Contains(msg, "because of: OOM"):
			r = max(r, refusedOOM)
		case strings.HasPrefix(msg, "EXECABORT Transaction discarded because of previous errors"):
			// the queued command's own error says why
		default:
			return unexpected
		}
	}
	return r
}

// counters are the load's totals, read by the test while it runs.
type counters struct {
	acked, misconf, oom      atomic.Int64 // durable writes
	cacheAcked, cacheRefused atomic.Int64
	reads                    atomic.Int64
	slowRounds               atomic.Int64
}

func (c *counters) count(r refusal) {
	switch r {
	case acked:
		c.acked.Add(1)
	case refusedMisconf:
		c.misconf.Add(1)
	case refusedOOM:
		c.oom.Add(1)
	}
}

// ledger is what one durable writer had acknowledged, in order. Every
// durable key has no expiry, so volatile-lru never evicts it: nothing
// acknowledged may be missing after the restart.
type ledger struct {
	strings map[string]bool // SET keys (their value is durableValue(key))
	hash    string          // the writer's hash: acknowledged fields below
	fields  map[string]bool // field -> value durableValue(field)
	list    string          // the writer's list: acknowledged elements in order
	elems   []string
}

func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, DisableIdentity: true, MaxRetries: -1, PoolSize: 2,
		// a write that times out is neither acknowledged nor refused; the
		// soak fails rather than guess, so the timeout is generous
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
	})
}

// durableWriter writes keys without expiry (SET of new keys, HSET of new
// fields, RPUSH, and MULTI blocks of SET+RPUSH) until ctx ends or it has
// done maxOps, pausing between writes so the keys it adds stay well under
// maxmemory. It records what was acknowledged.
func durableWriter(ctx context.Context, t *testing.T, addr string, id int, seed uint64, cnt *counters, led *ledger, maxOps int) {
	rdb := newClient(addr)
	defer rdb.Close()
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	led.strings, led.fields = map[string]bool{}, map[string]bool{}
	led.hash, led.list = fmt.Sprintf("h:%d", id), fmt.Sprintf("l:%d", id)
	for i := 0; i < maxOps && ctx.Err() == nil; i++ {
		key := fmt.Sprintf("d:%d:%d", id, i)
		var r refusal
		var err error
		switch op := rng.IntN(10); {
		case op < 5:
			err = rdb.Set(ctx, key, durableValue(key), 0).Err()
			if r = classify(err); r == acked {
				led.strings[key] = true
			}
		case op < 7:
			field := fmt.Sprintf("f%d", i)
			err = rdb.HSet(ctx, led.hash, field, durableValue(field)).Err()
			if r = classify(err); r == acked {
				led.fields[field] = true
			}
		case op < 9:
			elem := durableValue(key)
			err = rdb.RPush(ctx, led.list, elem).Err()
			if r = classify(err); r == acked {
				led.elems = append(led.elems, elem)
			}
		default:
			elem := durableValue(key + ":tx")
			var set *redis.StatusCmd
			var push *redis.IntCmd
			_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				set = p.Set(ctx, key, durableValue(key), 0)
				push = p.RPush(ctx, led.list, elem)
				return nil
			})
			if r = classify(err, set.Err(), push.Err()); r == acked {
				led.strings[key] = true
				led.elems = append(led.elems, elem)
			}
		}
		if r == unexpected {
			if ctx.Err() == nil {
				t.Errorf("durable writer %d, write %d: unexpected answer %v", id, i, err)
			}
			return
		}
		cnt.count(r)
		sleepCtx(ctx, 4*time.Millisecond)
	}
}

// cacheWriter writes keys of 256 B-2 KB with an hour's expiry over a key
// space (cacheKeys, ~23 MB) bigger than maxmemory, so volatile-lru keeps
// evicting them; their refusals are counted but they are not checked at the
// end (an evicted key is not a lost one).
func cacheWriter(ctx context.Context, t *testing.T, addr string, id int, seed uint64, cnt *counters, maxOps int) {
	rdb := newClient(addr)
	defer rdb.Close()
	rng := rand.New(rand.NewPCG(seed, 100+uint64(id)))
	for i := 0; i < maxOps && ctx.Err() == nil; i++ {
		key := fmt.Sprintf("c:%d", rng.IntN(cacheKeys))
		err := rdb.Set(ctx, key, cacheValue(key, 256+rng.IntN(1792)), time.Hour).Err()
		switch classify(err) {
		case acked:
			cnt.cacheAcked.Add(1)
		case refusedMisconf, refusedOOM:
			cnt.cacheRefused.Add(1)
		default:
			if ctx.Err() == nil {
				t.Errorf("cache writer %d, write %d: unexpected answer %v", id, i, err)
			}
			return
		}
		sleepCtx(ctx, time.Millisecond)
	}
}

// reader reads durable and cache keys and checks every value it gets.
func reader(ctx context.Context, t *testing.T, addr string, id int, seed uint64, cnt *counters, writers, maxOps int) {
	rdb := newClient(addr)
	defer rdb.Close()
	rng := rand.New(rand.NewPCG(seed, 200+uint64(id)))
	for i := 0; i < maxOps && ctx.Err() == nil; i++ {
		var key string
		durable := rng.IntN(2) == 0
		if durable {
			key = fmt.Sprintf("d:%d:%d", rng.IntN(writers), rng.IntN(2000))
		} else {
			key = fmt.Sprintf("c:%d", rng.IntN(cacheKeys))
		}
		v, err := rdb.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			if ctx.Err() == nil {
				t.Errorf("reader %d: GET %s: %v", id, key, err)
			}
			return
		case durable && v != durableValue(key),
			!durable && (len(v) < len(key)+257 || v != cacheValue(key, len(v)-len(key)-1)):
			t.Errorf("reader %d: GET %s = %.40q..., not the value written", id, key, v)
			return
		}
		cnt.reads.Add(1)
		sleepCtx(ctx, time.Millisecond)
	}
}

// slowClient pipelines GETs of the big values four at a time and reads
// the replies slowly, 4 KB per read with a pause, through a small receive
// buffer. What it leaves unread is at most its four replies (~200 KB),
// under the soft output limit, so it must be served, never closed.
func slowClient(ctx context.Context, t *testing.T, addr string, id int, cnt *counters, maxRounds int) {
	nc, err := dialSmallBuffer(addr)
	if err != nil {
		t.Errorf("slow client %d: %v", id, err)
		return
	}
	defer nc.Close()
	br := bufio.NewReaderSize(&slowReader{r: nc, pause: 2 * time.Millisecond}, 4096)
	var req strings.Builder
	for j := range 4 {
		fmt.Fprintf(&req, "GET big:%d\r\n", j)
	}
	for round := 0; round < maxRounds && ctx.Err() == nil; round++ {
		_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.WriteString(nc, req.String()); err != nil {
			t.Errorf("slow client %d, round %d: %v", id, round, err)
			return
		}
		for j := range 4 {
			v, err := readBulk(br)
			if err != nil {
				t.Errorf("slow client %d, round %d: reading big:%d: %v (closed by the output limit?)", id, round, j, err)
				return
			}
			if want := bigValue(fmt.Sprintf("big:%d", j)); v != want {
				t.Errorf("slow client %d: big:%d has %d bytes, not the value written", id, j, len(v))
				return
			}
		}
		cnt.slowRounds.Add(1)
	}
}

// nonReadingClient pipelines gets GETs of a big value and never reads a
// reply: the peer must close it once its unsent replies pass the hard
// output limit. It returns the connection for the end of the test.
func nonReadingClient(addr string, gets int) (net.Conn, error) {
	nc, err := dialSmallBuffer(addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(nc, strings.Repeat("GET big:0\r\n", gets)); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// dialSmallBuffer connects with an 8 KB receive buffer set before the
// handshake, so the kernel cannot absorb the replies a client leaves
// unread and they stay in the peer's output buffer.
func dialSmallBuffer(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192)
		})
		return errors.Join(err, serr)
	}}
	return d.Dial("tcp", addr)
}

// slowReader hands out at most 4 KB per read, after a pause.
type slowReader struct {
	r     io.Reader
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.pause)
	return s.r.Read(p[:min(len(p), 4096)])
}

// readBulk reads one RESP bulk string reply.
func readBulk(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("reply %q, want a bulk string", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("reply %q, want a bulk string", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
