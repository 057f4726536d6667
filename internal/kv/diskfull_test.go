package kv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/aof"
	"github.com/redis/go-redis/v9"
)

const misconfENOSPC = "MISCONF Errors writing to the AOF file: no space left on device"

// infoField returns one field of INFO persistence.
func infoField(t *testing.T, rdb *redis.Client, field string) string {
	t.Helper()
	info, err := rdb.Info(context.Background(), "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, _ := strings.Cut(line, ":"); k == field {
			return v
		}
	}
	return "(absent)"
}

// waitWritable sends SET key val until it is acknowledged: the server
// retries the disk on writes and every second.
func waitWritable(t *testing.T, rdb *redis.Client, key, val string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := rdb.Set(context.Background(), key, val, 0).Err()
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "MISCONF") || time.Now().After(deadline) {
			t.Fatalf("SET %s after the disk has space again: %v", key, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDiskFullRefusesWrites: when the log cannot be written, the writes
// whose log write failed are answered -MISCONF instead of +OK (reads in
// the same pipeline keep their replies), later writes and transactions
// are refused before they run, reads work, INFO shows the error; once the
// disk has space writes resume by themselves, and after a restart the
// data is what the server held in memory: the write held back by the
// failure was written, the refused ones never ran.
func TestDiskFullRefusesWrites(t *testing.T) {
	for _, fsync := range []string{"always", "everysec"} {
		for _, loops := range []int{0, -1} {
			name := fsync + "/event-loops"
			if loops < 0 {
				name = fsync + "/goroutines"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				fs := aof.NewFaultFS()
				e := startServer(t, func(c *Config) {
					c.DataDir, c.AppendFsync, c.LogFS, c.EventLoops = dir, fsync, fs, loops
				})
				ctx := context.Background()
				e.run([]step{{"set a 1", "OK"}})

				fs.SetSpace(5) // the next write stops inside its record
				r := e.raw()
				bulk := func(v string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(v), v) }
				cmd := func(args ...string) string {
					s := fmt.Sprintf("*%d\r\n", len(args))
					for _, a := range args {
						s += bulk(a)
					}
					return s
				}
				refusal := "-" + misconfENOSPC + "\r\n"
				r.roundTrip(cmd("GET", "a")+cmd("SET", "b", "2")+cmd("GET", "a")+cmd("SET", "x", "1"),
					bulk("1")+refusal+bulk("1")+refusal)
				if fs.FailedWrites() == 0 {
					t.Fatal("the fault was never hit")
				}
				e.run([]step{
					{"set c 3", "ERR:" + misconfENOSPC},
					{"incr n", "ERR:" + misconfENOSPC},
					{"get a", "1"},
					{"ping", "PONG"},
				})
				r.roundTrip(cmd("MULTI")+cmd("SET", "d", "4")+cmd("EXEC"),
					"+OK\r\n"+refusal+"-EXECABORT Transaction discarded because of previous errors.\r\n")
				for field, want := range map[string]string{
					"aof_last_write_status": "err", "aof_last_write_errno": "28",
					"aof_last_write_error": "no space left on device",
				} {
					if got := infoField(t, e.rdb, field); got != want {
						t.Errorf("INFO %s:%s, want %s", field, got, want)
					}
				}

				fs.SetSpace(-1)
				waitWritable(t, e.rdb, "e", "5")
				if got := infoField(t, e.rdb, "aof_last_write_status"); got != "ok" {
					t.Errorf("aof_last_write_status:%s after recovery", got)
				}
				want := canon(t, e.rdb)
				for _, k := range []string{"c", "d", "n"} {
					if _, ok := want[k]; ok {
						t.Errorf("refused write of %s ran", k)
					}
				}
				if err := e.srv.Close(); err != nil {
					t.Fatal(err)
				}
				e2 := startServer(t, func(c *Config) { c.DataDir, c.AppendFsync = dir, fsync })
				got := canon(t, e2.rdb)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("after restart\n%v\nwant (the memory before)\n%v", got, want)
				}
				if e2.rdb.Get(ctx, "e").Val() != "5" {
					t.Error("the write acknowledged after recovery is lost")
				}
			})
		}
	}
}

// TestDiskFullNotReplicated: a write the primary refuses because its log
// fails never reaches the replica; after recovery both hold the same data.
func TestDiskFullNotReplicated(t *testing.T) {
	fs := aof.NewFaultFS()
	p := startServer(t, func(c *Config) { c.DataDir, c.AppendFsync, c.LogFS = t.TempDir(), "always", fs })
	r := startServer(t, nil)
	replicaOf(t, r, p)
	p.run([]step{{"set a 1", "OK"}})
	waitSynced(t, p, r)

	fs.SetSpace(0)
	p.run([]step{{"set b 2", "ERR:" + misconfENOSPC}}) // ran, held back by the log
	off := p.srv.ReplOffset()
	p.run([]step{{"set c 3", "ERR:" + misconfENOSPC}, {"del a", "ERR:" + misconfENOSPC}})
	if got := p.srv.ReplOffset(); got != off {
		t.Errorf("refused writes went to the replication stream: offset %d -> %d", off, got)
	}
	fs.SetSpace(-1)
	waitWritable(t, p.rdb, "d", "4")
	waitSynced(t, p, r)
	sameData(t, p, r)
	r.run([]step{{"get c", "nil"}, {"get a", "1"}, {"get d", "4"}})
}
