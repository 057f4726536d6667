package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// FuzzReadExecFrame: any byte stream reads as frames or a clear error,
// never a panic or an allocation over MaxExecFrame; a frame written reads
// back the same.
func FuzzReadExecFrame(f *testing.F) {
	var seed bytes.Buffer
	_ = WriteExecFrame(&seed, ExecFrameStdout, []byte("hello"))
	_ = WriteExecFrame(&seed, ExecFrameExit, []byte{0, 0, 0, 3})
	f.Add(seed.Bytes())
	f.Add([]byte{})
	f.Add([]byte{'o', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'o', 0, 0, 0, 9, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			typ, p, err := ReadExecFrame(r, nil)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
				return
			}
			if len(p) > MaxExecFrame {
				t.Fatalf("frame of %d bytes", len(p))
			}
			var w bytes.Buffer
			if err := WriteExecFrame(&w, typ, p); err != nil {
				t.Fatal(err)
			}
			typ2, p2, err := ReadExecFrame(&w, nil)
			if err != nil || typ2 != typ || !bytes.Equal(p, p2) {
				t.Fatalf("round trip: %q %q %v", typ2, p2, err)
			}
		}
	})
}

func TestExecFrameLimits(t *testing.T) {
	if err := WriteExecFrame(io.Discard, ExecFrameStdin, make([]byte, MaxExecFrame+1)); err == nil {
		t.Fatal("an oversized frame was written")
	}
	hdr := []byte{ExecFrameStdout, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], MaxExecFrame+1)
	if _, _, err := ReadExecFrame(bytes.NewReader(hdr), nil); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("oversized frame read: %v", err)
	}
	if _, _, err := ReadExecFrame(bytes.NewReader([]byte{ExecFrameStdout, 0, 0, 0, 4, 'a'}), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a short frame: %v", err)
	}
}

// TestRunExecSession: the client side of a session against a scripted
// agent: stdin goes out as frames ending with a close, output frames go to
// stdout and stderr, the exit frame ends it with its code; an error frame
// is an error.
func TestRunExecSession(t *testing.T) {
	tests := []struct {
		name    string
		reply   func(w io.Writer)
		code    int
		out, eo string
		err     string
	}{
		{"exit", func(w io.Writer) {
			_ = WriteExecFrame(w, ExecFrameStdout, []byte("out"))
			_ = WriteExecFrame(w, ExecFrameStderr, []byte("err"))
			_ = WriteExecFrame(w, ExecFrameExit, []byte{0xff, 0xff, 0xff, 0xff})
		}, -1, "out", "err", ""},
		{"error", func(w io.Writer) { _ = WriteExecFrame(w, ExecFrameError, []byte("no such program")) }, -1, "", "", "exec: no such program"},
		{"cut", func(w io.Writer) { _ = WriteExecFrame(w, ExecFrameStdout, []byte("x")) }, -1, "x", "", "ended before"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, agent := net.Pipe()
			got := make(chan string, 1)
			go func() {
				defer agent.Close()
				var in bytes.Buffer
				for {
					typ, p, err := ReadExecFrame(agent, nil)
					if err != nil {
						got <- "read error"
						return
					}
					if typ == ExecFrameStdinClose {
						break
					}
					in.Write(p)
				}
				got <- in.String()
				tc.reply(agent)
			}()
			var out, eo bytes.Buffer
			code, err := RunExecSession(context.Background(), client, ExecOptions{
				Cmd: []string{"x"}, Stdin: strings.NewReader("input"), Stdout: &out, Stderr: &eo})
			if in := <-got; in != "input" {
				t.Fatalf("agent read %q", in)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
			} else if err != nil || code != tc.code {
				t.Fatalf("code %d err %v", code, err)
			}
			if out.String() != tc.out || eo.String() != tc.eo {
				t.Fatalf("stdout %q stderr %q", out.String(), eo.String())
			}
		})
	}
}
