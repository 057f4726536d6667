package peerexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/structs"
)

// RESPStore keeps records in the peer's own data store, through its RESP
// port like any client: a job is the string JobKey(id), its allocations
// the hash AllocsKey(id), both in the job's slot. So they are logged
// (appendonly), replicated to the slot's replicas, moved by resharding,
// and refused with MOVED once the slot belongs to another primary, which
// fences an owner that lost its slot.
type RESPStore struct {
	c *redis.Client
	// replicas returns how many replicas the peer has now; Sync waits for
	// one of them when there is any.
	replicas func() int
	timeout  time.Duration

	// Allocation records are written behind: PutAlloc (called under the
	// engine's lock, once per admitted copy) only queues the write, and a
	// goroutine sends what is queued as one pipeline. Every other call
	// flushes the queue first, on the same connection, so the store sees
	// the writes in their order. A queued write lost with a crash is one
	// the new owner rebuilds from the peers' reports (adoption).
	flushMu sync.Mutex // serialises flushes (and the calls that flush)
	wmu     sync.Mutex
	pending []hset // guarded by wmu
	kick    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	// Job records have a connection of their own (jc), written in the
	// order they were queued (jobs, by jobWriter): a registration's
	// acknowledgement waits for its record, not behind the allocation
	// writes queued before it (hundreds while an owner places).
	jc   *redis.Client
	jobs chan hset
}

// hset is one queued write: HSET key field val (an allocation), or SET
// key val (a job's record; nil val: a barrier, written once every write
// queued before it is) when field is empty; done, when set, hears how it
// went.
type hset struct {
	key, field string
	val        []byte
	done       *writeResult
}

// writeResult is how one queued write went, once its pipeline returned.
type writeResult struct {
	done chan struct{}
	err  error
}

// maxPendingWrites bounds the queued allocation writes: beyond it
// PutAlloc flushes inline.
const maxPendingWrites = 4096

// NewRESPStore connects to the peer's own address.
func NewRESPStore(addr, password string, replicas func() int) *RESPStore {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, PoolSize: 1, MaxRetries: -1, // one connection: WAIT counts the writes of its own connection

		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	jc := redis.NewClient(&redis.Options{Addr: addr, Password: password, PoolSize: 1, MaxRetries: -1,
		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	s := &RESPStore{c: c, jc: jc, replicas: replicas, timeout: 5 * time.Second, kick: make(chan struct{}, 1), done: make(chan struct{}),
		jobs: make(chan hset, maxQueuedJobs)}
	s.wg.Add(2)
	go s.writeBehind()
	go s.jobWriter()
	return s
}

// maxQueuedJobs bounds the job records waiting for their connection:
// beyond it, queueing one waits (the API's requests are bounded too).
const maxQueuedJobs = 256

// Close sends what is queued, then closes the connections.
func (s *RESPStore) Close() error {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
	return errors.Join(s.c.Close(), s.jc.Close())
}

// jobWriter writes the queued job records on their connection, in order:
// what waits is sent as one pipeline.
func (s *RESPStore) jobWriter() {
	defer s.wg.Done()
	var batch []hset
	for {
		batch = batch[:0]
		select {
		case w := <-s.jobs:
			batch = append(batch, w)
		case <-s.done:
			for { // what was queued before Close
				select {
				case w := <-s.jobs:
					batch = append(batch, w)
				default:
					s.writeJobs(batch)
					return
				}
			}
		}
	more:
		for len(batch) < maxQueuedJobs {
			select {
			case w := <-s.jobs:
				batch = append(batch, w)
			default:
				break more
			}
		}
		s.writeJobs(batch)
	}
}

// writeJobs sends job records as one pipeline and tells each waiter.
func (s *RESPStore) writeJobs(batch []hset) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := s.ctx()
	defer cancel()
	pipe := s.jc.Pipeline()
	cmds := make([]redis.Cmder, len(batch))
	for i, w := range batch {
		if w.val != nil {
			cmds[i] = pipe.Set(ctx, w.key, w.val, 0)
		}
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx) // each record's own error goes to its waiter
	}
	for i, w := range batch {
		if cmds[i] != nil { // a barrier only orders
			w.done.err = storeErr(cmds[i].Err())
		}
		close(w.done.done)
	}
}

// queueJob queues a job record (nil b: a barrier) and returns its wait.
func (s *RESPStore) queueJob(key string, b []byte) func() error {
	res := &writeResult{done: make(chan struct{})}
	select {
	case s.jobs <- hset{key: key, val: b, done: res}:
	case <-s.done:
		return func() error { return errors.New("peerexec: store closed") }
	}
	return func() error {
		select {
		case <-res.done:
		case <-s.done:
			s.wg.Wait() // Close writes what was queued before it
			select {
			case <-res.done:
			default:
				return errors.New("peerexec: store closed")
			}
		}
		return res.err
	}
}

func (s *RESPStore) writeBehind() {
	defer s.wg.Done()
	for {
		select {
		case <-s.kick:
			s.flushMu.Lock()
			_ = s.flushLocked()
			s.flushMu.Unlock()
		case <-s.done:
			s.flushMu.Lock()
			_ = s.flushLocked()
			s.flushMu.Unlock()
			return
		}
	}
}

// flushLocked sends the queued writes as one pipeline (under flushMu).
func (s *RESPStore) flushLocked() error {
	s.wmu.Lock()
	batch := s.pending
	s.pending = nil
	s.wmu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	pipe := s.c.Pipeline()
	for _, w := range batch {
		pipe.HSet(ctx, w.key, w.field, w.val)
	}
	_, err := pipe.Exec(ctx)
	return storeErr(err)
}

// flush sends the queued writes before a call that must follow them.
func (s *RESPStore) flush() func() {
	s.flushMu.Lock()
	_ = s.flushLocked() // a refused record write is the engine's to ignore, as before
	return s.flushMu.Unlock
}

func (s *RESPStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// storeErr marks the store's refusals of a slot it does not serve now
// (CLUSTERDOWN, MOVED, ASK, TRYAGAIN) as ErrClusterDown: the caller may
// retry, here or at the new owner.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "MOVED", "ASK", "TRYAGAIN"} {
		if strings.HasPrefix(msg, p) {
			return fmt.Errorf("%w: store: %w", ErrClusterDown, err)
		}
	}
	return err
}

// PutJob implements Store: the record goes on the job records'
// connection, behind the records queued before it, not behind the
// allocation writes.
func (s *RESPStore) PutJob(j *structs.Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.queueJob(JobKey(j.ID), b)()
}

// ErrNotReplicated: the shard has replicas and none confirmed the write
// in time; the submission is not acknowledged (it may still apply).
var ErrNotReplicated = fmt.Errorf("%w: no replica confirmed the write within 1s", ErrClusterDown)

// Sync implements Store: WAIT for one replica (up to 1 s) when the peer
// has any.
func (s *RESPStore) Sync() error {
	n := s.replicas()
	if n == 0 {
		return nil
	}
	defer s.flush()()
	ctx, cancel := s.ctx()
	defer cancel()
	// WAIT counts a connection's own writes: the allocations', then the
	// job records'
	for _, c := range []*redis.Client{s.c, s.jc} {
		got, err := c.Wait(ctx, 1, time.Second).Result()
		if err != nil {
			return err
		}
		if got < 1 {
			return ErrNotReplicated
		}
	}
	return nil
}

// DeleteJob implements Store: after the allocation writes and the job
// records queued before it.
func (s *RESPStore) DeleteJob(id string) error {
	defer s.flush()()
	if err := s.queueJob("", nil)(); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return storeErr(s.c.Del(ctx, JobKey(id), AllocsKey(id)).Err())
}

// PutAlloc implements Store.
func (s *RESPStore) PutAlloc(a *structs.Allocation) error {
	c := *a
	c.Job = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	s.pending = append(s.pending, hset{key: AllocsKey(a.JobID), field: a.ID, val: b})
	n := len(s.pending)
	s.wmu.Unlock()
	if n >= maxPendingWrites {
		s.flush()()
		return nil
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// Load implements Store: SCAN for job keys, then read the owned ones
// (once the writes queued before are done).
func (s *RESPStore) Load(owned func(string) bool) ([]*structs.Job, []*structs.Allocation, error) {
	defer s.flush()()
	if err := s.queueJob("", nil)(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var jobs []*structs.Job
	var allocs []*structs.Allocation
	var cursor uint64
	const prefix = "gantry/job/{"
	for {
		keys, next, err := s.c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return nil, nil, err
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix) || !strings.HasSuffix(k, "}") {
				continue
			}
			id := k[len(prefix) : len(k)-1]
			if !owned(id) {
				continue
			}
			b, err := s.c.Get(ctx, k).Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			var j structs.Job
			if err := json.Unmarshal(b, &j); err != nil {
				return nil, nil, fmt.Errorf("job record %s: %w", k, err)
			}
			jobs = append(jobs, &j)
			m, err := s.c.HGetAll(ctx, AllocsKey(id)).Result()
			if err != nil {
				return nil, nil, err
			}
			for aid, v := range m {
				var a structs.Allocation
				if err := json.Unmarshal([]byte(v), &a); err != nil {
					return nil, nil, fmt.Errorf("allocation record %s: %w", aid, err)
				}
				allocs = append(allocs, &a)
			}
		}
		cursor = next
		if cursor == 0 {
			return jobs, allocs, nil
		}
	}
}
