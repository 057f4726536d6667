package kv

import (
	"testing"

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
		name string
		cmds [][]string // repeated to fill the pipeline
		mod  func(b *testing.B, cfg *Config)
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
		{"set", [][]string{{"SET", "key:000000000042", "xxx"}}, nil},
		{"get", [][]string{{"GET", "key:000000000042"}}, nil},
		{"incr", [][]string{{"INCR", "counter:42"}}, nil},
		{"lpush-rpop", [][]string{{"LPUSH", "mylist", "xxx"}, {"RPOP", "mylist"}}, nil},
		{"sadd-spop", [][]string{{"SADD", "myset", "element:42"}, {"SPOP", "myset"}}, nil},
		{"hset", [][]string{{"HSET", "myhash", "element:42", "xxx"}}, nil},
		{"zadd", [][]string{{"ZADD", "myzset", "42", "element:42"}}, nil},
		{"set-aof", [][]string{{"SET", "key:000000000042", "xxx"}}, aof},
		{"set-aof-always", [][]string{{"SET", "key:000000000042", "xxx"}}, aofAlways},
		{"set-cluster", [][]string{{"SET", "key:000000000042", "xxx"}}, cluster},
		{"get-cluster", [][]string{{"GET", "key:000000000042"}}, cluster},
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
			c.rbuf = make([]byte, len(pipe))
			b.ReportAllocs()
			b.ResetTimer()
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
		})
	}
}

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
