//go:build linux

package aof

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteRaw(t *testing.T) {
	name := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := bytes.Repeat([]byte("*1\r\n$4\r\nPING\r\n"), 1000)
	for _, b := range [][]byte{want[:14], want[14:]} {
		if n, ok, err := writeRaw(f, b); !ok || err != nil || n != len(b) {
			t.Fatalf("writeRaw(%d bytes) = %d, %v, %v", len(b), n, ok, err)
		}
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, want) {
		t.Fatalf("file has %d bytes, want the %d written", len(got), len(want))
	}
	// too big, or not an *os.File: the caller writes through File
	if _, ok, _ := writeRaw(f, make([]byte, rawWriteMax+1)); ok {
		t.Fatal("writeRaw took a write over rawWriteMax")
	}
	ff, err := NewFaultFS().OpenFile(filepath.Join(t.TempDir(), "x"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	if _, ok, _ := writeRaw(ff, want[:14]); ok {
		t.Fatal("writeRaw wrote to a FaultFS file")
	}
	// a failed write is an error with the system's errno, as os.File's
	ro, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n, ok, err := writeRaw(ro, want[:14])
	if !ok || n != 0 || !errors.Is(err, syscall.EBADF) || errnoOf(err) != syscall.EBADF {
		t.Fatalf("write to a read-only file = %d, %v, %v; want 0, true, EBADF", n, ok, err)
	}
}
