package kv

import (
	"fmt"
	"slices"
	"testing"
)

// BenchmarkTypesCommandPath measures XADD and PFADD through the same path
// as BenchmarkCommandPath (parse, dispatch, handler, log, reply): one op
// is a pipeline of 16 commands.
//
//	go test -run '^$' -bench TypesCommandPath -benchmem ./internal/kv
func BenchmarkTypesCommandPath(b *testing.B) {
	aof := func(b *testing.B, cfg *Config) {
		cfg.DataDir = b.TempDir()
		cfg.AppendFsync = "no"
	}
	// pipelines: XADD with a generated ID into a stream kept near 10,000
	// entries; PFADD of distinct elements (64 pipelines of 16, cycled) into
	// a dense HyperLogLog (20,000 elements), and into a sparse one (the
	// 1,024 elements keep it under hll-sparse-max-bytes, 3000)
	xadd := [][]string{{"XADD", "stream", "MAXLEN", "~", "10000", "*", "field", "value:000000000042"}}
	pfadd := func(key string, n int) [][]string {
		var cmds [][]string
		for i := 0; i < n; i++ {
			cmds = append(cmds, []string{"PFADD", key, fmt.Sprintf("element:%012d", i)})
		}
		return cmds
	}
	// hashes: HSET (updates, after the warm-up) of the 16 fields of a
	// small hash and of the 1,024 of a large one (past
	// hash-max-listpack-entries); HGET and HGETALL of the small one (the
	// first pipeline of each creates it)
	hcmds := func(cmd, key string, n int, value bool) [][]string {
		var cmds [][]string
		for i := 0; i < n; i++ {
			c := []string{cmd, key, fmt.Sprintf("field:%04d", i)}
			if value {
				c = append(c, fmt.Sprintf("value:%08d", i))
			}
			cmds = append(cmds, c)
		}
		return cmds
	}
	reads := func(cmd [][]string) [][]string {
		cmds := hcmds("HSET", "h", 16, true)
		for i := 0; i < 63; i++ {
			cmds = append(cmds, cmd...)
		}
		return cmds
	}
	for _, v := range []struct {
		name  string
		pipes [][]string // each a command; 16 consecutive ones make a pipeline
		mod   func(*testing.B, *Config)
	}{
		{"xadd", xadd, nil},
		{"xadd-aof", xadd, aof},
		{"pfadd", pfadd("hll", 20000), nil},
		{"pfadd-sparse", pfadd("hlls", 64*16), nil},
		{"pfcount", [][]string{{"PFCOUNT", "hll"}}, nil},
		{"hset", hcmds("HSET", "h", 16, true), nil},
		{"hset-big", hcmds("HSET", "hbig", 1024, true), nil},
		{"hget", reads(hcmds("HGET", "h", 16, false)), nil},
		{"hgetall", reads(slices.Repeat([][]string{{"HGETALL", "h"}}, 16)), nil},
	} {
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
			var pipes [][]byte
			for i := 0; i < len(v.pipes) || len(pipes) == 0; i += 16 {
				var p []byte
				for j := 0; j < 16; j++ {
					p = append(p, cmdBytes(v.pipes[(i+j)%len(v.pipes)]...)...)
				}
				pipes = append(pipes, p)
			}
			c := newClient(s, nullConn{})
			c.rbuf = make([]byte, len(pipes[0])*2)
			// warm up: the HyperLogLog exists (and is dense) before timing
			for _, p := range pipes {
				c.rbuf = append(c.rbuf[:0], p...)
				c.rstart, c.rend = 0, len(p)
				c.process()
				_ = c.flush()
			}
			pipes = pipes[:min(len(pipes), 64)]
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				p := pipes[i%len(pipes)]
				i++
				c.rbuf = append(c.rbuf[:0], p...)
				c.rstart, c.rend = 0, len(p)
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
