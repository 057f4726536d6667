//go:build linux

package aof

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// rawWriteMax is the largest write made with writeRaw: a bigger one takes
// long enough in the kernel that the runtime's bookkeeping is noise, and
// through os.File the scheduler can run other goroutines meanwhile.
const rawWriteMax = 256 << 10

// writeRaw writes all of b to f with write(2) called directly, as Redis's
// event loop writes its log, instead of through os.File. os.File.Write
// enters the system call through the runtime (entersyscall), which wakes
// the runtime's monitor thread (sysmon) whenever it sleeps because the
// process was idle: with one event loop that goes idle between batches,
// that was a wake-up of a second thread per log write, on the core the
// clients use. ok is false when f is not an *os.File or b is too large:
// the caller writes through f then.
func writeRaw(f File, b []byte) (n int, ok bool, err error) {
	of, isOS := f.(*os.File)
	if !isOS || len(b) > rawWriteMax {
		return 0, false, nil
	}
	fd := of.Fd()
	for n < len(b) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			err = &os.PathError{Op: "write", Path: of.Name(), Err: e}
			break
		}
		if r == 0 { // as os.File.Write reports a write of nothing
			err = &os.PathError{Op: "write", Path: of.Name(), Err: io.ErrUnexpectedEOF}
			break
		}
		n += int(r)
	}
	runtime.KeepAlive(of)
	return n, true, err
}
