package kv

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// BenchmarkCommandPath measures the command path without the network: a
// pipeline of 16 commands (what redis-benchmark -P 16 sends) parsed,
// dispatched, run, logged and answered into the reply buffer, then
// "written" to a connection that discards it, for the commands of
// redis-benchmark's default set (bench/redis-compare.sh). One op is one
// pipeline; allocs/op counts the allocations of 16 commands.
//
//	go test -run '^$' -bench CommandPath -benchmem ./internal/kv
func BenchmarkCommandPath(b *testing.B) {
	type variant struct {
		name  string
		cmds  [][]string // repeated to fill the pipeline
		mod   func(b *testing.B, cfg *Config)
		setup [][]string // run once before
	}
	aof := func(b *testing.B, cfg *Config) {
		cfg.DataDir = b.TempDir()
		cfg.AppendFsync = "no"
	}
	aofAlways := func(b *testing.B, cfg *Config) { // one write and fsync per pipeline
		cfg.DataDir = b.TempDir()
		cfg.AppendFsync = "always"
	}
	cluster := func(_ *testing.B, cfg *Config) { cfg.Cluster = benchHook{} }
	variants := []variant{
		{"set", [][]string{{"SET", "key:000000000042", "xxx"}}, nil, nil},
		{"get", [][]string{{"GET", "key:000000000042"}}, nil, nil},
		{"incr", [][]string{{"INCR", "counter:42"}}, nil, nil},
		{"lpush-rpop", [][]string{{"LPUSH", "mylist", "xxx"}, {"RPOP", "mylist"}}, nil, nil},
		{"sadd-spop", [][]string{{"SADD", "myset", "element:42"}, {"SPOP", "myset"}}, nil, nil},
		{"hset", [][]string{{"HSET", "myhash", "element:42", "xxx"}}, nil, nil},
		{"zadd", [][]string{{"ZADD", "myzset", "42", "element:42"}}, nil, nil},
		{"set-aof", [][]string{{"SET", "key:000000000042", "xxx"}}, aof, nil},
		{"set-aof-always", [][]string{{"SET", "key:000000000042", "xxx"}}, aofAlways, nil},
		{"set-cluster", [][]string{{"SET", "key:000000000042", "xxx"}}, cluster, nil},
		{"get-cluster", [][]string{{"GET", "key:000000000042"}}, cluster, nil},
		// redis-benchmark's EVALSHA test of bench/redis-compare.sh
		{"evalsha", [][]string{{"EVALSHA", benchScriptSHA, "1", "key:000000000042"}}, nil,
			[][]string{{"SCRIPT", "LOAD", benchScript}}},
		// the same with a new key every run (redis-benchmark -r)
		{"evalsha-keys", evalshaKeys(16), nil, [][]string{{"SCRIPT", "LOAD", benchScript}}},
		{"publish", [][]string{{"PUBLISH", "bench", "message-of-some-bytes"}}, nil, nil},
		// the stream grows by 16 entries per op: run with -benchtime Nx
		{"xadd", [][]string{{"XADD", "bench-stream", "*", "field", "value-of-some-bytes"}}, nil, nil},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Logger = nil
			cfg.ActiveExpireHz = 0
			cfg.EventLoops = -1
			if v.mod != nil {
				v.mod(b, &cfg)
			}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var pipe []byte
			for len(pipe) == 0 || countCommands(pipe) < 16 {
				for _, c := range v.cmds {
					pipe = append(pipe, cmdBytes(c...)...)
				}
			}
			c := newClient(s, nullConn{})
			for _, cmd := range v.setup {
				c.Args = c.Args[:0]
				for _, a := range cmd {
					c.Args = append(c.Args, []byte(a))
				}
				s.dispatch(c)
				if len(c.W.B) > 0 && c.W.B[0] == '-' {
					b.Fatalf("%v: %q", cmd, c.W.B)
				}
				c.W.B = c.W.B[:0]
			}
			c.rbuf = make([]byte, len(pipe))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for b.Loop() {
				copy(c.rbuf, pipe)
				c.rstart, c.rend = 0, len(pipe)
				if c.process() != procMore {
					b.Fatalf("process: %q", c.W.B)
				}
				if err := c.flush(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system CPU time the process has used: per
// op, it is what a benchmark costs however much the shared machine lets
// it run (ns/op is wall-clock time).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// evalshaKeys is n EVALSHAs of benchScript, each with its own key.
func evalshaKeys(n int) [][]string {
	cmds := make([][]string, n)
	for i := range cmds {
		cmds[i] = []string{"EVALSHA", benchScriptSHA, "1", fmt.Sprintf("key:%012d", i)}
	}
	return cmds
}

// benchScript is the script of the EVALSHA test, benchScriptSHA its SHA1.
const (
	benchScript    = "return redis.call('incr', KEYS[1])"
	benchScriptSHA = "2bab3b661081db58bd2341920e0ba7cf5dc77b25"
)

func countCommands(b []byte) int {
	n := 0
	var args [][]byte
	for len(b) > 0 {
		var used int
		args, used, _ = resp.ParseCommand(b, args)
		if used == 0 {
			break
		}
		b = b[used:]
		n++
	}
	return n
}

// benchHook routes every command here, as the owner of every slot does.
type benchHook struct{}

func (benchHook) Route(RouteRequest) string          { return "" }
func (benchHook) Command(_ [][]byte, w *resp.Writer) { w.OK() }
func (benchHook) InfoLines(string) []string          { return nil }
