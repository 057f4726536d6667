//go:build linux

package kv

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/uring"
)

// eventLoop serves many connections from one goroutine with epoll, the way
// Redis's event loop does: wait for readable sockets, read and execute
// everything each one sent, wait once for the log (group commit), then
// write every reply. Compared with a goroutine per connection this saves
// the read that finds the socket empty and the goroutine switches, which
// dominate the cost of unpipelined requests. The server runs one loop per
// CPU, so unlike Redis it uses every core.
//
// A client whose blocking command (BLPOP ...) has to wait leaves its loop
// for a goroutine of its own (procDetach) and stays there.
type eventLoop struct {
	s      *Server
	epfd   int
	epFile *os.File        // epfd, registered with Go's netpoller
	epConn syscall.RawConn // waits for epfd to have events
	wakeR  int
	wakeW  int
	// clients is indexed by fd (a lookup per event, cheaper than a map);
	// it grows to the highest fd served. Loop goroutine only.
	clients []*Client

	mu   sync.Mutex // guards adds, mail and idle
	adds []*Client
	mail []*Client // clients with pub/sub messages (postMail)
	// idle is set while the loop sleeps or is about to: only then does
	// postMail wake it; a busy loop takes the mail at the end of its
	// iteration (takeMail), which saves two system calls per message
	// batch when the publisher runs on the subscriber's loop
	idle    bool
	hasMail atomic.Bool // mail is not empty
	touched []*Client
	// held are clients whose messages stay in their mailbox for a later
	// pass (see pushHoldMax): clients that only receive pushes, with less than
	// pushHoldMax waiting, while the loop is busy. heldPasses counts the
	// passes since the first was held; spare is held's other array.
	held, heldSpare []*Client
	heldPasses      int
	// holds counts the mailboxes held at the end of a pass (tests,
	// measurements)
	holds atomic.Int64
	// hooks, set by a test, looks at the loop at its checkpoints
	hooks atomic.Pointer[loopHooks]
	// resume holds clients that stopped running their input to send
	// their replies first (procOut); they run again once those are out.
	resume, resuming []*Client
	cronDue          atomic.Bool // the server's cron asks for l.cron
	// replyNext is the fd where the cron's next visit of reply buffers
	// starts (cronReplies)
	replyNext int

	// waitTS is how long a loop that just served events waits for more
	// in epoll_wait before it parks (loopWait); waitMs is the same in
	// whole milliseconds, for kernels without epoll_pwait2 (before 5.11).
	waitTS syscall.Timespec
	waitMs int
	// parkN and parkErr carry the result of the poll the parked loop
	// runs when the netpoller wakes it (parkPoll, a method value made
	// once, so a park allocates nothing).
	parkEvents []syscall.EpollEvent
	parkN      int
	parkErr    error
	parkFn     func(uintptr) bool

	// ring, when set, reads the clients of an iteration with one
	// io_uring_enter, and writes their replies with another (see
	// readBatch); nil serves them with read(2) and write(2).
	ring  batchRing
	reads []*Client // clients to read this iteration (with ring only)
	batch []*Client // the clients of ops
	ops   []uring.Op
	// batchReads and batchWrites count the batches (tests, measurements)
	batchReads, batchWrites atomic.Int64
	// io are the INFO counters of the loop's clients (iostats.go)
	io ioStats
}

// loopHooks are a test's looks at a loop, on the loop's goroutine.
type loopHooks struct {
	// pass runs at the end of each iteration, once the replies are written
	pass func(l *eventLoop)
	// idle runs when the loop is about to wait for events (goIdle), with
	// l.mu held and no mail posted
	idle func(l *eventLoop)
	// holdAlways holds every push-only client's messages whatever their
	// size, for as many passes as it takes and when the loop waits: only a
	// command of the client's own takes them
	holdAlways bool
	// holdAhead holds as if every pass with mail found more work ahead
	// (within pushHoldPasses and pushHoldMax)
	holdAhead bool
}

// Pushes to a client that sent nothing (pub/sub messages, invalidations)
// are held in its mailbox while its loop has more work ready, so that the
// client gets them in fewer, larger writes; replies are never held. At the
// end of a pass that served two clients or more, with mail to deliver,
// the loop looks at its epoll set without waiting (passMail): when more
// clients are ready, it leaves the mailboxes of push-only clients
// (nothing unsent, the socket not full) with less than pushHoldMax bytes
// for the next pass, which serves what the look found without polling
// again, at most pushHoldPasses passes in a row. When nothing is ready
// they go out with the pass's replies, before the loop waits. So a push
// waits at most pushHoldPasses passes of a busy loop and never while the
// loop is idle; a client that sends a command gets the pushes in front of
// its reply (pubsubGate), in that pass.
const (
	pushHoldMax    = 16 << 10
	pushHoldPasses = 4
)

// ringEntries is the size of a loop's io_uring: more clients in one
// iteration take more than one io_uring_enter.
const ringEntries = 256

// newRing sets up a loop's io_uring; a variable so that a test can refuse
// it as an old kernel (ENOSYS), a seccomp profile (EPERM) or
// kernel.io_uring_disabled would.
var newRing = func() (batchRing, error) {
	r, err := uring.New(ringEntries)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// batchRing is what a loop needs of a *uring.Ring (a test breaks one).
type batchRing interface {
	Do(ops []uring.Op) error
	Close() error
}

// loopWait is how long a loop that has just served events waits for more
// in epoll_wait, holding its thread and its P, before it parks in Go's
// netpoller. A client that is answered sends its next request within
// tens of microseconds; waiting for it in epoll_wait is one system call
// where parking and being woken is five (two empty polls here, the
// runtime's own empty poll and its blocking one, then the poll that finds
// the events) plus the scheduler's work, the way Redis waits in its
// epoll_wait. Past loopWait without events the loop parks as before, so
// an idle loop holds no thread.
const loopWait = 200 * time.Microsecond

// While a loop waits in epoll_wait it holds its P, so it first lets the
// goroutines that are ready run (runtime.Gosched): a client's goroutine it
// just started (a blocking command), one a command woke, a timer's (the
// cron, the log's fsync). Goroutines waiting for the network (a client on
// a goroutine of its own, a replica's link) are found by the runtime's
// monitor, which polls the network every 10 ms when nobody else does,
// while a loop keeps finding events and so never parks.

func newEventLoop(s *Server) (*eventLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	l := &eventLoop{s: s, epfd: epfd, wakeR: p[0], wakeW: p[1]}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wakeR)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wakeR, &ev); err != nil {
		l.closeFDs()
		return nil, err
	}
	// The loop never blocks in epoll_wait: an epoll descriptor is readable
	// when it has events, so the loop goroutine parks in Go's netpoller
	// like any goroutine waiting on a socket, and no thread is tied up.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		l.closeFDs()
		return nil, err
	}
	l.epFile = os.NewFile(uintptr(epfd), "epoll")
	rc, err := l.epFile.SyscallConn()
	if err != nil {
		l.closeFDs()
		return nil, err
	}
	l.epConn = rc
	l.waitTS = syscall.NsecToTimespec(loopWait.Nanoseconds())
	l.waitMs = int((loopWait + time.Millisecond - 1) / time.Millisecond)
	l.parkFn = l.parkPoll
	return l, nil
}

// client is the client served on fd, nil if none.
func (l *eventLoop) client(fd int) *Client {
	if uint(fd) < uint(len(l.clients)) {
		return l.clients[fd]
	}
	return nil
}

func (l *eventLoop) setClient(c *Client) {
	if c.fd >= len(l.clients) {
		l.clients = append(l.clients, make([]*Client, max(c.fd+1, 2*len(l.clients), 64)-len(l.clients))...)
	}
	l.clients[c.fd] = c
}

func (l *eventLoop) closeFDs() {
	if l.ring != nil {
		_ = l.ring.Close() // munmap and close of our own ring: nothing to do on failure
		l.ring = nil
	}
	if l.epFile != nil {
		l.epFile.Close()
	} else {
		syscall.Close(l.epfd)
	}
	syscall.Close(l.wakeR)
	syscall.Close(l.wakeW)
}

func (l *eventLoop) wake() {
	// EAGAIN means the pipe already holds a wake-up: nothing is lost.
	_, _ = syscall.Write(l.wakeW, []byte{1})
}

// add hands a connection to the loop.
func (l *eventLoop) add(c *Client) {
	l.mu.Lock()
	l.adds = append(l.adds, c)
	l.mu.Unlock()
	l.wake()
}

// connFD returns the file descriptor of a TCP connection; it stays valid
// until the connection is closed.
func connFD(nc net.Conn) (int, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}

func (l *eventLoop) run() {
	defer l.closeFDs()
	events := make([]syscall.EpollEvent, 256)
	l.parkEvents = events
	served := false // the last iteration had events: wait for more before parking
	carried := 0    // events the last pass found ahead (passMail's look)
	for {
		var n int
		var err error
		switch {
		case carried > 0: // found by the last pass, still in events
			n, carried = carried, 0
		case len(l.held) > 0 && !l.holdAlways():
			// held pushes go out before the loop waits (passMail holds
			// only when it found more work ahead, so this is a safeguard)
			l.releaseHeld()
			l.flushTouched()
			continue
		case len(l.resume) > 0: // clients to run: only look
			n, err = pollNow(l.epfd, events)
		case served:
			var mail bool
			n, mail, err = l.waitEvents(events)
			if mail { // mail came meanwhile: deliver it first
				l.flushTouched()
				continue
			}
		default:
			// Under load a non-blocking poll finds work at once; an idle loop
			// waits in the netpoller for the epoll descriptor to be readable.
			n, err = pollNow(l.epfd, events)
		}
		if n == 0 && err == nil && len(l.resume) == 0 {
			if l.goIdle() { // mail came meanwhile: deliver it first
				l.flushTouched()
				continue
			}
			if rerr := l.epConn.Read(l.parkFn); rerr != nil {
				err = rerr
			} else {
				n, err = l.parkN, l.parkErr
			}
			l.mu.Lock()
			l.idle = false
			l.mu.Unlock()
		}
		served = n > 0
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			l.s.logger.Printf("event loop: epoll_wait: %v", err)
			return
		}
		l.resumeClients() // flushed at the end of the last iteration
		ready := 0        // clients with input
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.wakeR {
				if !l.drainWake() {
					l.shutdown()
					return
				}
				continue
			}
			c := l.client(fd)
			if c == nil {
				continue
			}
			if events[i].Events&syscall.EPOLLOUT != 0 {
				l.writeOut(c)
				continue
			}
			if c.waitingOut {
				// its socket filled after passMail's look found its input:
				// it is read once the socket drains (writeOut)
				continue
			}
			ready++
			if l.ring != nil {
				l.reads = append(l.reads, c)
				continue
			}
			l.readClient(c)
		}
		l.readBatch()
		carried = l.passMail(ready, events)
		l.flushTouched()
		if h := l.hooks.Load(); h != nil && h.pass != nil {
			h.pass(l)
		}
		if l.cronDue.Swap(false) {
			l.cron()
		}
	}
}

// parkPoll is the parked loop's look at its epoll descriptor, each time
// the netpoller reports it readable (and once before the loop parks).
func (l *eventLoop) parkPoll(uintptr) bool {
	l.parkN, l.parkErr = pollNow(l.epfd, l.parkEvents)
	return l.parkN > 0 || l.parkErr != nil
}

// waitEvents waits up to loopWait for events, marked idle meanwhile so
// that posted mail wakes it; mail is true when mail was waiting already
// (goIdle delivered it, nothing was polled).
func (l *eventLoop) waitEvents(events []syscall.EpollEvent) (n int, mail bool, err error) {
	// what the iteration made ready (a client's goroutine it started, a
	// goroutine a command woke, a timer's) runs before the loop holds the
	// P in epoll_wait
	runtime.Gosched()
	if l.goIdle() {
		return 0, true, nil
	}
	n, err = l.epollWait(events)
	l.mu.Lock()
	l.idle = false
	l.mu.Unlock()
	return n, false, err
}

// epollWait is epoll_pwait2 with the timeout loopWait (epoll_wait with
// whole milliseconds on kernels without it). It is a raw system call: the
// loop keeps its P while it waits, which skips the runtime's system call
// bookkeeping and the hand-off of the P (see loopWait for what that costs
// other goroutines).
func (l *eventLoop) epollWait(events []syscall.EpollEvent) (int, error) {
	if l.waitMs == 0 {
		return pollNow(l.epfd, events)
	}
	if !noPwait2.Load() {
		r, e := epollPwait2(l.epfd, events, &l.waitTS)
		if e == 0 {
			return r, nil
		}
		// ENOSYS: a kernel before 5.11; EPERM: a seccomp profile that
		// does not know the call (a container runtime's older default)
		if e != syscall.ENOSYS && e != syscall.EPERM {
			return 0, e
		}
		noPwait2.Store(true)
	}
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(l.waitMs), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// noPwait2 is set once epoll_pwait2 answered ENOSYS or EPERM.
var noPwait2 atomic.Bool

// epollPwait2 is the epoll_pwait2 system call; a variable so that a test
// can refuse it as a kernel or a seccomp profile would.
var epollPwait2 = func(epfd int, events []syscall.EpollEvent, ts *syscall.Timespec) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
		uintptr(unsafe.Pointer(ts)), 0, 0)
	return int(r), e
}

// resumeClients runs the input of clients that stopped to send their
// replies (procOut), once the socket took enough of them; one whose socket
// takes nothing resumes in writeOut when it does.
func (l *eventLoop) resumeClients() {
	if len(l.resume) == 0 {
		return
	}
	l.resuming, l.resume = l.resume, l.resuming[:0]
	for _, c := range l.resuming {
		if l.client(c.fd) == c && !c.closing && !c.outputPaused() {
			l.runClient(c)
		}
	}
	clear(l.resuming)
}

// requestCron makes the loop run its cron at its next iteration.
func (l *eventLoop) requestCron() {
	l.cronDue.Store(true)
	l.wake()
}

// cron is the loop's share of Redis's clientsCron: it closes clients idle
// longer than timeout and clients whose unsent replies stayed over the soft
// output limit too long while the loop waited for their socket, gives
// the buffers of idle clients back, trims oversized query buffers
// (resizeQuery) and, at Redis's pace, resizes reply buffers
// (cronReplies).
func (l *eventLoop) cron() {
	s := l.s
	now := s.nowMs()
	timeout := s.lim.timeoutMs.Load()
	o := &s.lim.output[classNormal]
	soft, secs := o.soft.Load(), o.softSecs.Load()
	ps := &s.lim.output[classPubsub]
	n := 0
	for _, c := range l.clients {
		if c == nil {
			continue
		}
		n++
		if c.shared.killed.Load() { // CLIENT KILL
			l.closeClient(c)
			continue
		}
		idle := now - c.lastIO
		if idle > idleRelease.Milliseconds() {
			c.releaseBuffers()
		}
		c.resizeQuery(idle)
		soft, secs := soft, secs
		if c.subs.count() > 0 {
			soft, secs = ps.soft.Load(), ps.softSecs.Load()
		}
		if timeout > 0 && idle > timeout {
			s.timeoutCloses.Add(1)
			l.closeClient(c)
			continue
		}
		if c.waitingOut {
			if out := len(c.W.B) - c.wpos; c.softOver(out, soft, secs, now) {
				c.closeForOutput(out, "soft limit "+strconv.FormatInt(soft, 10)+" for more than "+strconv.FormatInt(secs, 10)+" s")
				l.closeClient(c)
			}
			continue
		}
	}
	l.cronReplies(now, n)
}

// drainWake takes new connections; false means the server is closing.
func (l *eventLoop) drainWake() bool {
	var buf [64]byte
	for {
		if n, _ := syscall.Read(l.wakeR, buf[:]); n <= 0 {
			break
		}
	}
	select {
	case <-l.s.done:
		return false
	default:
	}
	l.mu.Lock()
	adds, mail := l.adds, l.mail
	l.adds, l.mail = nil, nil
	l.hasMail.Store(false)
	l.mu.Unlock()
	defer l.deliverMail(mail, false)
	for _, c := range adds {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			l.s.logger.Printf("event loop: add client: %v", err)
			l.s.dropClient(c)
			c.nc.Close()
			continue
		}
		l.setClient(c)
		c.setMailLoop(l)
		c.io = &l.io
	}
	return true
}

func (l *eventLoop) readClient(c *Client) {
	if !c.prepareRead() {
		l.closeClient(c)
		return
	}
	n, err := rawRead(c.fd, c.rbuf[c.rend:])
	l.readDone(c, n, err)
}

// readDone runs what a read of n bytes (or err) brought.
func (l *eventLoop) readDone(c *Client, n int, err error) {
	l.io.reads.Add(1)
	if n <= 0 {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			c.noteQuery() // prepareRead may have changed the buffer
			return
		}
		l.closeClient(c)
		return
	}
	c.rend += n
	l.io.netIn.Add(int64(n))
	c.notePeak()
	l.runClient(c)
}

// readBatch reads the clients of the iteration (reads) with one
// io_uring_enter instead of one read(2) each, then runs their commands;
// one client is read with read(2). Every receive carries MSG_DONTWAIT, so
// it completes within the enter as read(2) on the non-blocking socket
// would: with the bytes, EAGAIN or an error (package uring).
func (l *eventLoop) readBatch() {
	if len(l.reads) < 2 {
		if len(l.reads) == 1 {
			l.readClient(l.reads[0])
		}
		clear(l.reads)
		l.reads = l.reads[:0]
		return
	}
	l.batch, l.ops = l.batch[:0], l.ops[:0]
	for _, c := range l.reads {
		if l.client(c.fd) != c { // closed by an earlier event
			continue
		}
		if !c.prepareRead() {
			l.closeClient(c)
			continue
		}
		l.batch = append(l.batch, c)
		l.ops = append(l.ops, uring.Op{Kind: uring.Recv, FD: c.fd, Buf: c.rbuf[c.rend:]})
	}
	clear(l.reads)
	l.reads = l.reads[:0]
	l.batchReads.Add(1)
	if err := l.ring.Do(l.ops); err != nil {
		l.ringFailed(err)
	}
	for i, c := range l.batch {
		o := &l.ops[i]
		// a command of a client before it in the batch may have closed it
		if l.client(c.fd) == c {
			l.readDone(c, o.N, o.Err)
		}
	}
	l.clearBatch()
}

// writeBatch writes the replies of the touched clients with one
// io_uring_enter instead of one write(2) each (at least two of them; a
// single one is left to writeOut). What a send leaves (a partial write,
// EAGAIN, an error) writeOut handles as after write(2). It returns false
// when it wrote nothing.
func (l *eventLoop) writeBatch() bool {
	l.batch, l.ops = l.batch[:0], l.ops[:0]
	for _, c := range l.touched {
		if c.batched || c.waitingOut || c.wpos >= len(c.W.B) || l.client(c.fd) != c {
			continue // once per client: touched may hold it twice
		}
		if c.shared.killed.Load() {
			continue // writeOut closes it without a write
		}
		c.batched = true
		l.batch = append(l.batch, c)
		l.ops = append(l.ops, uring.Op{Kind: uring.Send, FD: c.fd, Buf: c.W.B[c.wpos:]})
	}
	if len(l.batch) < 2 {
		for _, c := range l.batch {
			c.batched = false
		}
		l.clearBatch()
		return false
	}
	l.batchWrites.Add(1)
	if err := l.ring.Do(l.ops); err != nil {
		l.ringFailed(err)
	}
	for i, c := range l.batch {
		o := &l.ops[i]
		if l.client(c.fd) == c && l.wrote(c, o.N, o.Err) {
			l.writeOut(c) // the rest, or the end of the replies
		}
	}
	l.clearBatch()
	return true
}

func (l *eventLoop) clearBatch() {
	clear(l.batch)
	l.batch = l.batch[:0]
	clear(l.ops)
	l.ops = l.ops[:0]
}

// ringFailed turns io_uring off for the loop after Do failed. A client
// whose buffer the kernel may still hold (Lost) gives that buffer up
// without touching it (no pool gets it back) and is closed; the others
// have their results.
func (l *eventLoop) ringFailed(err error) {
	l.s.logger.Printf("event loop: io_uring: %v; using read and write", err)
	_ = l.ring.Close() // a broken ring stays open: the kernel may write into it
	l.ring = nil
	for i, c := range l.batch {
		if !l.ops[i].Lost {
			continue
		}
		if l.ops[i].Kind == uring.Recv {
			c.rbuf, c.rstart, c.rend = nil, 0, 0
		} else {
			c.W.B, c.wpos = nil, 0
		}
		l.closeClient(c)
	}
}

// runClient executes the client's buffered commands.
func (l *eventLoop) runClient(c *Client) {
	res := c.process()
	if res != procDetach { // a detached client is its goroutine's now
		c.noteQuery()
	}
	switch res {
	case procClose:
		c.closing = true
	case procDetach:
		l.detachClient(c)
		return
	case procOut:
		l.resume = append(l.resume, c)
	}
	if len(c.W.B) > 0 || c.closing {
		l.touched = append(l.touched, c)
	}
}

// flushTouched waits once for the log to hold what the replies
// acknowledge, then writes the replies.
func (l *eventLoop) flushTouched() {
	if len(l.touched) == 0 {
		return
	}
	var wait int64
	for _, c := range l.touched {
		if c.aofWait > wait {
			wait = c.aofWait
		}
		c.aofWait = 0
	}
	if wait > 0 {
		durable, refusal := l.s.waitLog(wait)
		for _, c := range l.touched {
			c.settleAcks(durable, refusal)
		}
	}
	if l.ring != nil && len(l.touched) >= 2 && l.writeBatch() {
		for _, c := range l.touched {
			if c.batched { // written by writeBatch
				c.batched = false
				continue
			}
			l.writeOut(c)
		}
	} else {
		for _, c := range l.touched {
			l.writeOut(c)
		}
	}
	clear(l.touched)
	l.touched = l.touched[:0]
}

// writeOut writes pending replies; when the socket is full it waits for
// EPOLLOUT and stops reading the client meanwhile.
func (l *eventLoop) writeOut(c *Client) {
	if c.shared.killed.Load() {
		// CLIENT KILL, or evicted for maxmemory-clients by its own batch:
		// as Redis frees it, what it was not sent yet is dropped
		l.closeClient(c)
		return
	}
	c.reply.notePeak(len(c.W.B))
	for c.wpos < len(c.W.B) {
		n, err := rawWrite(c.fd, c.W.B[c.wpos:])
		if !l.wrote(c, n, err) {
			return
		}
	}
	c.wpos = 0
	if cap(c.W.B) > keptBufSize {
		l.s.released.Add(int64(cap(c.W.B)))
		c.W.B = nil
		c.noteMem() // the big reply is out: its memory no longer counts
	} else {
		c.W.B = c.W.B[:0]
		c.sentAll()
	}
	if c.closing {
		l.closeClient(c)
		return
	}
	if c.waitingOut {
		c.waitingOut = false
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			l.closeClient(c)
			return
		}
		l.runClient(c) // input that arrived while we were not reading
	}
}

// wrote takes the result of a write of c's replies; false means stop
// writing: the socket is full (the loop waits for EPOLLOUT) or c is closed.
func (l *eventLoop) wrote(c *Client, n int, err error) bool {
	l.io.writes.Add(1)
	if n > 0 {
		c.wpos += n
		l.io.netOut.Add(int64(n))
		if c.waitingOut { // a slow reader is not idle
			c.lastIO = l.s.nowMs()
		}
		return true
	}
	if errors.Is(err, syscall.EAGAIN) {
		if !c.waitingOut {
			c.waitingOut = true
			ev := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(c.fd)}
			if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
				// the loop would never learn the socket drained
				l.closeClient(c)
			}
		}
		return false
	}
	if errors.Is(err, syscall.EINTR) {
		return true
	}
	l.closeClient(c)
	return false
}

func (l *eventLoop) closeClient(c *Client) {
	if l.client(c.fd) == nil {
		return
	}
	// closing the socket removes it from the epoll set anyway
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	l.clients[c.fd] = nil
	c.unwatchAll()
	c.nc.Close()
	l.s.dropClient(c)
}

// detachClient moves a client to a goroutine of its own.
func (l *eventLoop) detachClient(c *Client) {
	// DEL fails only for an fd that is not in the set: nothing to undo
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	l.clients[c.fd] = nil
	c.setMailLoop(nil)
	c.io = nil
	s := l.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.nc.Close()
		return
	}
	c.inLoop = false
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if h := s.detached.Load(); h != nil {
			(*h)(c)
		}
		c.serve()
		s.dropClient(c)
	}()
}

func (l *eventLoop) shutdown() {
	for _, c := range l.clients {
		if c != nil {
			c.nc.Close()
			l.s.dropClient(c)
		}
	}
	clear(l.clients)
	l.mu.Lock()
	for _, c := range l.adds {
		c.nc.Close()
	}
	l.adds = nil
	l.mu.Unlock()
}

// startLoops starts n event loops; it reports false when they are not
// available.
func (s *Server) startLoops(n int) bool {
	for i := 0; i < n; i++ {
		l, err := newEventLoop(s)
		if err != nil {
			s.logger.Printf("event loops unavailable, serving with goroutines: %v", err)
			for _, l := range s.loops {
				l.wake()
			}
			s.loops = nil
			return false
		}
		s.loops = append(s.loops, l)
	}
	if !s.cfg.NoIOURing {
		for i, l := range s.loops {
			r, err := newRing()
			if err != nil {
				if i == 0 { // the others would fail alike
					s.logger.Printf("event loops: io_uring unavailable, using read and write: %v", err)
				}
				for _, l := range s.loops[:i] {
					_ = l.ring.Close()
					l.ring = nil
				}
				break
			}
			l.ring = r
		}
	}
	for _, l := range s.loops {
		s.goTracked(l.run)
	}
	return true
}

func (s *Server) wakeLoops() {
	for _, l := range s.loops {
		l.wake()
	}
}

// pollNow is epoll_wait with a zero timeout. It never blocks, so it skips
// the runtime's entersyscall/exitsyscall.
func pollNow(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawRead and rawWrite are read(2) and write(2) on non-blocking sockets,
// which return at once, so they skip the runtime's system call bookkeeping.
func rawRead(fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// postMail asks the loop to move c's pub/sub messages into its replies.
func (l *eventLoop) postMail(c *Client) {
	l.mu.Lock()
	l.mail = append(l.mail, c)
	l.hasMail.Store(true)
	wake := l.idle
	l.idle = false // one wake-up is enough: the loop takes all the mail
	l.mu.Unlock()
	if wake {
		l.wake()
	}
}

// passMail delivers, at the end of a pass, the mail posted while the loop
// was busy and the mailboxes it held, or holds those of push-only clients
// for the next pass (see pushHoldMax). It holds only when the pass served
// more than one client and a look at the epoll set (pollNow into events,
// which the pass is done with) finds more work ready: it returns how many
// events that look found, which the next pass serves without polling.
func (l *eventLoop) passMail(ready int, events []syscall.EpollEvent) (ahead int) {
	if len(l.held) == 0 && !l.hasMail.Load() {
		return 0
	}
	hold := ready >= 2 && l.heldPasses < pushHoldPasses
	h := l.hooks.Load()
	switch {
	case h != nil && h.holdAlways:
		hold = true
	case h != nil && h.holdAhead:
		hold = l.heldPasses < pushHoldPasses
	case hold:
		if n, err := pollNow(l.epfd, events); err == nil && n > 0 {
			ahead = n
		} else {
			hold = false // nothing more to do: send them now
		}
	}
	if len(l.held) > 0 {
		held := l.takeHeld()
		l.deliverMail(held, hold)
		clear(held)
		l.heldSpare = held[:0]
	}
	if l.hasMail.Load() {
		l.takeMail(hold)
	}
	if len(l.held) > 0 {
		l.heldPasses++
	} else {
		l.heldPasses = 0
	}
	return ahead
}

// holdAlways reports a test's holdAlways.
func (l *eventLoop) holdAlways() bool {
	h := l.hooks.Load()
	return h != nil && h.holdAlways
}

// releaseHeld moves the held mailboxes into the replies, which
// flushTouched writes.
func (l *eventLoop) releaseHeld() {
	held := l.takeHeld()
	l.deliverMail(held, false)
	clear(held)
	l.heldSpare = held[:0]
	l.heldPasses = 0
}

// takeHeld empties l.held, returning what it held.
func (l *eventLoop) takeHeld() []*Client {
	held := l.held
	l.held = l.heldSpare[:0]
	for _, c := range held {
		c.pushHeld = false
	}
	return held
}

// takeMail delivers the mail posted while the loop was busy, holding
// what it may (hold, see passMail).
func (l *eventLoop) takeMail(hold bool) {
	l.mu.Lock()
	mail := l.mail
	l.mail = nil
	l.hasMail.Store(false)
	l.mu.Unlock()
	l.deliverMail(mail, hold)
}

// goIdle marks the loop idle before it sleeps, unless mail came while it
// was busy: then it delivers the mail and reports true (the loop flushes
// and polls again instead of sleeping).
func (l *eventLoop) goIdle() bool {
	l.mu.Lock()
	if len(l.mail) > 0 {
		mail := l.mail
		l.mail = nil
		l.hasMail.Store(false)
		l.mu.Unlock()
		l.deliverMail(mail, false)
		return true
	}
	if h := l.hooks.Load(); h != nil && h.idle != nil {
		h.idle(l)
	}
	l.idle = true
	l.mu.Unlock()
	return false
}

// deliverMail moves the mailboxes of clients still served by the loop
// into their replies, which flushTouched writes; with hold, those of
// push-only clients under pushHoldMax stay for a later pass (l.held).
func (l *eventLoop) deliverMail(mail []*Client, hold bool) {
	limit := pushHoldMax
	if l.holdAlways() {
		limit = mailMax
	}
	for _, c := range mail {
		if l.client(c.fd) != c {
			c.pushHeld = false
			continue
		}
		if c.pushHeld { // held (again) earlier in this pass
			continue
		}
		if hold && len(c.W.B) == 0 && !c.waitingOut && !c.closing && c.holdMail(limit) {
			c.pushHeld = true
			l.held = append(l.held, c)
			l.holds.Add(1)
			continue
		}
		if !c.takeMail() {
			l.closeClient(c)
			continue
		}
		// a subscriber sends nothing, so no batch of its own notes what
		// its messages hold: they count from here (maxmemory-clients)
		c.noteMem()
		if len(c.W.B) > c.wpos && !c.waitingOut {
			l.touched = append(l.touched, c)
		}
	}
}
