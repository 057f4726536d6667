//go:build linux

// Package uring submits batches of non-blocking socket sends and receives
// through one io_uring_enter each, instead of one send(2)/recv(2) per
// socket. On hosts where entering the kernel dominates the cost of a small
// request (virtual machines), one entry for many sockets is the saving.
//
// It is written by hand on golang.org/x/sys/unix rather than taken from a
// library because the part needed is small and synchronous: set up a ring,
// fill SQEs, enter once, read the CQEs. Every SQE carries MSG_DONTWAIT,
// which makes the kernel finish the request during io_uring_enter (with a
// result or -EAGAIN) instead of arming a poll and keeping the buffer
// (REQ_F_NOWAIT in io_uring/net.c): when Do returns nil, the kernel holds
// no buffer of the batch. Do checks this: a request without its
// completion is waited for (bounded), and if it is still out the ring is
// broken for good and keeps the buffers of the batch alive forever.
//
// A Ring is used by one goroutine at a time.
package uring

import (
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opSend = 26 // IORING_OP_SEND
	opRecv = 27 // IORING_OP_RECV

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featExtArg     = 1 << 8 // IORING_FEAT_EXT_ARG

	setupSubmitAll = 1 << 7 // IORING_SETUP_SUBMIT_ALL

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS
	enterExtArg    = 1 << 3 // IORING_ENTER_EXT_ARG
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// Params is struct io_uring_params.
type Params struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad2        uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	pad       uint32
	ts        uint64
}

// Kind is what an Op does.
type Kind uint8

const (
	Send Kind = iota // send(fd, Buf, MSG_DONTWAIT|MSG_NOSIGNAL)
	Recv             // recv(fd, Buf, MSG_DONTWAIT)
)

// Op is one request of a batch. Do sets N to the byte count, or Err to
// the error (syscall.EAGAIN when the socket is full or empty), as send(2)
// and recv(2) would.
type Op struct {
	Kind Kind
	FD   int
	Buf  []byte // not empty
	N    int
	Err  error
	// Lost is set when the kernel may still hold Buf (the ring broke
	// with the request out): Buf must never be used or reused again.
	Lost bool
}

// ErrBroken is returned by Do when a request did not complete within the
// enter and did not within a bounded wait after it: the kernel may still
// hold buffers of the batch (the ring keeps them alive), and the ring must
// not be used again. Ops with Err == ErrBroken are the ones still out.
var ErrBroken = errors.New("uring: a request did not complete inline; ring disabled")

// Ring is an io_uring instance for batches of non-blocking socket I/O.
type Ring struct {
	fd      int
	entries uint32
	extArg  bool
	mmaps   [][]byte

	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []sqe

	cqHead, cqTail, cqMask *uint32
	cqes                   []cqe

	broken bool
	held   [][]byte // buffers the kernel may still hold (broken ring)
}

// Setup is the io_uring_setup system call; a variable so that a test can
// refuse it as an old kernel (ENOSYS), a seccomp profile (EPERM) or
// kernel.io_uring_disabled would.
var Setup = func(entries uint32, p *Params) (int, error) {
	r, _, e := syscall.RawSyscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// New sets up a ring of entries (a power of two) submission entries.
func New(entries uint32) (*Ring, error) {
	var p Params
	p.Flags = setupSubmitAll
	fd, err := Setup(entries, &p)
	if errors.Is(err, syscall.EINVAL) { // before 5.18: no SUBMIT_ALL
		p = Params{}
		fd, err = Setup(entries, &p)
	}
	if err != nil {
		return nil, err
	}
	r := &Ring{fd: fd, entries: p.SQEntries, extArg: p.Features&featExtArg != 0}
	if err := r.mapRings(&p); err != nil {
		_ = r.Close() // the mapping's error is the one to report
		return nil, err
	}
	return r, nil
}

func (r *Ring) mapRings(p *Params) error {
	sqSize := int(p.sqOff.array) + int(p.SQEntries)*4
	cqSize := int(p.cqOff.cqes) + int(p.CQEntries)*int(unsafe.Sizeof(cqe{}))
	single := p.Features&featSingleMmap != 0
	if single && cqSize > sqSize {
		sqSize = cqSize
	}
	prot, flags := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE
	sq, err := unix.Mmap(r.fd, offSQRing, sqSize, prot, flags)
	if err != nil {
		return err
	}
	r.mmaps = append(r.mmaps, sq)
	cq := sq
	if !single {
		if cq, err = unix.Mmap(r.fd, offCQRing, cqSize, prot, flags); err != nil {
			return err
		}
		r.mmaps = append(r.mmaps, cq)
	}
	sqeMem, err := unix.Mmap(r.fd, offSQEs, int(p.SQEntries)*int(unsafe.Sizeof(sqe{})), prot, flags)
	if err != nil {
		return err
	}
	r.mmaps = append(r.mmaps, sqeMem)

	u32 := func(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
	r.sqHead, r.sqTail, r.sqMask = u32(sq, p.sqOff.head), u32(sq, p.sqOff.tail), u32(sq, p.sqOff.ringMask)
	r.sqArray = unsafe.Slice(u32(sq, p.sqOff.array), p.SQEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqeMem[0])), p.SQEntries)
	r.cqHead, r.cqTail, r.cqMask = u32(cq, p.cqOff.head), u32(cq, p.cqOff.tail), u32(cq, p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cq[p.cqOff.cqes])), p.CQEntries)
	return nil
}

// Close releases the ring; a broken ring stays mapped and open, as the
// kernel may still complete into it.
func (r *Ring) Close() error {
	if r.broken {
		return nil
	}
	for _, m := range r.mmaps {
		_ = unix.Munmap(m)
	}
	r.mmaps = nil
	return syscall.Close(r.fd)
}

// Entries is how many requests one enter submits at most; Do splits
// larger batches.
func (r *Ring) Entries() int { return int(r.entries) }

// Do runs the batch, one io_uring_enter per Entries() requests, and sets
// each Op's result. It returns ErrBroken (see there) or an error of
// io_uring_enter itself; then Ops without a result have Err set too.
func (r *Ring) Do(ops []Op) error {
	if r.broken {
		for i := range ops {
			ops[i].N, ops[i].Err, ops[i].Lost = 0, ErrBroken, false
		}
		return ErrBroken
	}
	for len(ops) > 0 {
		k := min(len(ops), int(r.entries))
		if err := r.do(ops[:k]); err != nil {
			for i := range ops[k:] { // not submitted
				ops[k+i].N, ops[k+i].Err, ops[k+i].Lost = 0, err, false
			}
			return err
		}
		ops = ops[k:]
	}
	return nil
}

func (r *Ring) do(ops []Op) error {
	tail := *r.sqTail // only this side writes the tail
	mask := *r.sqMask
	for i := range ops {
		o := &ops[i]
		idx := (tail + uint32(i)) & mask
		s := &r.sqes[idx]
		*s = sqe{fd: int32(o.FD), addr: uint64(uintptr(unsafe.Pointer(&o.Buf[0]))), len: uint32(len(o.Buf)), userData: uint64(i)}
		if o.Kind == Send {
			s.opcode, s.msgFlags = opSend, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL
		} else {
			s.opcode, s.msgFlags = opRecv, unix.MSG_DONTWAIT
		}
		r.sqArray[idx] = idx
		o.N, o.Err, o.Lost = 0, ErrBroken, false // until its completion says otherwise
	}
	// the store publishes the SQEs (release)
	atomic.StoreUint32(r.sqTail, tail+uint32(len(ops)))

	want := len(ops)
	got, submitted := 0, 0
	var err error
	for submitted < want {
		n, e := enter(r.fd, uint32(want-submitted), 0, 0, nil)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			err = e
			break
		}
		if n == 0 { // nothing taken: an SQ the kernel does not see
			err = syscall.EBUSY
			break
		}
		submitted += n
	}
	got += r.reap(ops)
	if got < submitted {
		// Not completed inline: not expected with MSG_DONTWAIT. Wait for
		// the rest, bounded, before anyone touches the buffers.
		for try := 0; try < 10 && got < submitted; try++ {
			r.wait(uint32(submitted - got))
			got += r.reap(ops)
		}
		if got < submitted {
			r.broken = true
			for i := range ops {
				if errors.Is(ops[i].Err, ErrBroken) {
					ops[i].Lost = true
					r.held = append(r.held, ops[i].Buf)
				}
			}
			return ErrBroken
		}
	}
	runtime.KeepAlive(ops)
	if err != nil {
		if submitted < want {
			// SQEs the kernel did not take would be taken by the next
			// enter: the ring is not usable any more
			r.broken = true
			for i := range ops {
				if errors.Is(ops[i].Err, ErrBroken) {
					ops[i].Err, ops[i].Lost = err, true
					r.held = append(r.held, ops[i].Buf)
				}
			}
		}
		return err
	}
	return nil
}

// reap reads the completions and returns how many there were.
func (r *Ring) reap(ops []Op) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail) // acquire: the CQEs before it are written
	mask := *r.cqMask
	n := 0
	for ; head != tail; head++ {
		c := &r.cqes[head&mask]
		if i := c.userData; i < uint64(len(ops)) {
			o := &ops[i]
			if c.res >= 0 {
				o.N, o.Err = int(c.res), nil
			} else {
				o.N, o.Err = 0, syscall.Errno(-c.res)
			}
		}
		n++
	}
	atomic.StoreUint32(r.cqHead, head) // release: the slots are free again
	return n
}

// wait blocks until n completions are there or 100 ms passed.
func (r *Ring) wait(n uint32) {
	if !r.extArg {
		// no timeout without EXT_ARG (before 5.11): only look
		_, _ = enter(r.fd, 0, 0, enterGetEvents, nil) // the reap after it counts what came
		return
	}
	ts := unix.NsecToTimespec(100e6)
	arg := getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&ts)))}
	_, _, _ = syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, uintptr(n),
		enterGetEvents|enterExtArg, uintptr(unsafe.Pointer(&arg)), unsafe.Sizeof(arg))
	runtime.KeepAlive(&ts)
}

// enter is io_uring_enter as a raw system call: with MSG_DONTWAIT it does
// not block, so it skips the runtime's system call bookkeeping.
func enter(fd int, toSubmit, minComplete, flags uint32, arg unsafe.Pointer) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit),
		uintptr(minComplete), uintptr(flags), uintptr(arg), 0)
	return int(r), e
}
