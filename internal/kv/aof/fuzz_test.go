package aof

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

func cmdBytes(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return resp.AppendCommand(nil, b...)
}

// fixedClock is a clock that does not move.
type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// FuzzLogReader feeds arbitrary bytes to the log reader as a data
// directory's log: loading never fails or panics, the log is truncated to
// its valid prefix, and loading the truncated log again reads all of it
// into the same keyspace.
func FuzzLogReader(f *testing.F) {
	command.MaxStringSize = 1 << 20
	var valid []byte
	valid = append(valid, cmdBytes("SET", "a", "1")...)
	valid = append(valid, cmdBytes("RPUSH", "l", "x", "y")...)
	valid = append(valid, cmdBytes("MULTI")...)
	valid = append(valid, cmdBytes("SADD", "s", "m")...)
	valid = append(valid, cmdBytes("ZADD", "z", "1.5", "m")...)
	valid = append(valid, cmdBytes("EXEC")...)
	valid = append(valid, cmdBytes("HSET", "h", "f", "v")...)
	valid = append(valid, cmdBytes("PEXPIREAT", "a", "99999999999999")...)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(cmdBytes("MULTI"), cmdBytes("SET", "x", "y")...))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel"))
	f.Add([]byte("garbage\x00\xff"))
	f.Add(cmdBytes("LPUSH", "k", "v", "BLPOP", "k", "0"))
	f.Add(cmdBytes("INCRBYFLOAT", "f", "1e308"))
	table := command.NewTable()
	table.Register(command.DataCommands()...)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, manifestName), []byte("gantry-kv 1\nlog "+logName(1)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, logName(1))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		open := func() (*Log, *keyspace.Keyspace) {
			ks := keyspace.New()
			var dirty, lastSave atomic.Int64
			a, err := Open(Config{Dir: dir, On: true, Fsync: "no", KS: ks, Table: table, Track: &command.Tracker{},
				Clock: fixedClock{}, Logger: log.New(io.Discard, "", 0), Dirty: &dirty, LastSave: &lastSave})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			return a, ks
		}
		a, ks := open()
		n1 := ks.Len()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		trunc, _ := os.ReadFile(path)
		if len(trunc) > len(data) || string(trunc) != string(data[:len(trunc)]) {
			t.Fatalf("log is not a prefix of the input after loading")
		}
		a2, ks2 := open()
		defer a2.Close()
		if got, _ := os.ReadFile(path); len(got) != len(trunc) {
			t.Fatalf("second load truncated again: %d -> %d", len(trunc), len(got))
		}
		if ks2.Len() != n1 {
			t.Fatalf("second load has %d keys, first %d", ks2.Len(), n1)
		}
	})
}
