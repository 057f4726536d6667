package aof

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// FS is what the log does to the files it writes (the logs and the
// snapshots): open, write, fsync, truncate. It is the seam where tests
// inject a full disk or a failing fsync (FaultFS); OS is the operating
// system's. Reading, renaming and removing files go to the os package
// directly: their failures leave the previous generation in place.
type FS interface {
	// OpenFile opens a file as os.OpenFile does.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
}

// File is an open file of the data directory.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	// Truncate changes the size of the file (ftruncate).
	Truncate(size int64) error
	Close() error
}

// OS is the FS of the operating system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// FaultFS is an FS over the operating system's that fails on demand, for
// tests: a write that does not fit the remaining space is written in part
// and fails with ENOSPC, as on a full disk (truncating a file gives its
// space back), and Sync or Truncate fail with a set error. Its zero value
// is not usable; use NewFaultFS.
type FaultFS struct {
	mu       sync.Mutex
	space    int64 // bytes that can still be written; < 0 is unlimited
	syncErr  error
	truncErr error
	writes   int // failed writes, for tests to know the fault was hit
}

// NewFaultFS returns a FaultFS that does not fail yet.
func NewFaultFS() *FaultFS { return &FaultFS{space: -1} }

// SetSpace makes writes fail with ENOSPC once n more bytes have been
// written (n < 0: never).
func (f *FaultFS) SetSpace(n int64) {
	f.mu.Lock()
	f.space = n
	f.mu.Unlock()
}

// FailSync makes every Sync fail with err (nil: succeed again).
func (f *FaultFS) FailSync(err error) {
	f.mu.Lock()
	f.syncErr = err
	f.mu.Unlock()
}

// FailTruncate makes every Truncate fail with err (nil: succeed again).
func (f *FaultFS) FailTruncate(err error) {
	f.mu.Lock()
	f.truncErr = err
	f.mu.Unlock()
}

// FailedWrites returns how many writes failed for lack of space.
func (f *FaultFS) FailedWrites() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// OpenFile opens a real file whose writes, fsyncs and truncations fail as
// set.
func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	of, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	st, err := of.Stat()
	if err != nil {
		of.Close()
		return nil, err
	}
	return &faultFile{fs: f, f: of, size: st.Size()}, nil
}

type faultFile struct {
	fs   *FaultFS
	f    *os.File
	size int64 // to give space back on truncation
}

func (ff *faultFile) Write(p []byte) (int, error) {
	fs := ff.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fit := len(p)
	if fs.space >= 0 && int64(fit) > fs.space {
		fit = int(fs.space)
	}
	n, err := ff.f.Write(p[:fit])
	ff.size += int64(n)
	if fs.space >= 0 {
		fs.space -= int64(n)
	}
	if err == nil && fit < len(p) {
		fs.writes++
		err = &os.PathError{Op: "write", Path: ff.f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

func (ff *faultFile) Sync() error {
	ff.fs.mu.Lock()
	err := ff.fs.syncErr
	ff.fs.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "sync", Path: ff.f.Name(), Err: err}
	}
	return ff.f.Sync()
}

func (ff *faultFile) Truncate(size int64) error {
	fs := ff.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.truncErr != nil {
		return &os.PathError{Op: "truncate", Path: ff.f.Name(), Err: fs.truncErr}
	}
	if err := ff.f.Truncate(size); err != nil {
		return err
	}
	if fs.space >= 0 && size < ff.size {
		fs.space += ff.size - size
	}
	ff.size = size
	return nil
}

func (ff *faultFile) Close() error { return ff.f.Close() }

// errnoOf returns the system error number under err, 0 for none.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}
