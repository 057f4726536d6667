package kv

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestReplNetBytes: total_net_repl_output_bytes counts what a primary
// writes to its replicas (the full sync's payload, then the stream) and
// total_net_repl_input_bytes what a replica reads from its primary, as
// Redis 7.0.15's; the instantaneous_*_repl_kbps figures are their rates
// and CONFIG RESETSTAT zeroes them.
func TestReplNetBytes(t *testing.T) {
	noCron := func(c *Config) { c.cronEvery = time.Hour }
	p, r := startServer(t, noCron), startServer(t, noCron)
	ctx := context.Background()
	stat := func(e *testEnv, name string) int64 {
		t.Helper()
		return infoNum(e.rdb.Info(ctx, "stats").Val(), name)
	}
	kbps := func(e *testEnv, name string) string {
		t.Helper()
		for _, l := range strings.Split(e.rdb.Info(ctx, "stats").Val(), "\r\n") {
			if v, ok := strings.CutPrefix(l, name+":"); ok {
				return v
			}
		}
		t.Fatalf("INFO stats has no %s", name)
		return ""
	}
	big := strings.Repeat("v", 20000)
	p.rdb.Set(ctx, "before", big, 0)
	if o := stat(p, "total_net_repl_output_bytes"); o != 0 {
		t.Fatalf("no replica yet: total_net_repl_output_bytes %d", o)
	}
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	out, in := stat(p, "total_net_repl_output_bytes"), stat(r, "total_net_repl_input_bytes")
	if out < 20000 || in < 20000 {
		t.Fatalf("after a full sync of a 20,000-byte value: primary wrote %d, replica read %d", out, in)
	}
	p.srv.sampleMetrics(1000)
	r.srv.sampleMetrics(1000)
	off := p.srv.ReplOffset()
	p.rdb.Set(ctx, "after", big, 0)
	waitSynced(t, p, r)
	streamed := p.srv.ReplOffset() - off
	out2, in2 := stat(p, "total_net_repl_output_bytes"), stat(r, "total_net_repl_input_bytes")
	if out2-out < streamed || in2-in < streamed {
		t.Errorf("%d bytes streamed: primary wrote %d more, replica read %d more", streamed, out2-out, in2-in)
	}
	if stat(p, "total_net_repl_input_bytes") != 0 || stat(r, "total_net_repl_output_bytes") != 0 {
		t.Errorf("primary's repl input or replica's repl output not 0")
	}
	p.srv.sampleMetrics(1100)
	r.srv.sampleMetrics(1100)
	if k := kbps(p, "instantaneous_output_repl_kbps"); k == "0.00" {
		t.Errorf("instantaneous_output_repl_kbps %s after %d bytes in 100 ms", k, out2-out)
	}
	if k := kbps(r, "instantaneous_input_repl_kbps"); k == "0.00" {
		t.Errorf("instantaneous_input_repl_kbps %s after %d bytes in 100 ms", k, in2-in)
	}
	p.run([]step{{"config resetstat", "OK"}})
	if o := stat(p, "total_net_repl_output_bytes"); o >= out2 {
		t.Errorf("after CONFIG RESETSTAT: total_net_repl_output_bytes %d", o)
	}
	if k := kbps(p, "instantaneous_output_repl_kbps"); k != "0.00" {
		t.Errorf("after CONFIG RESETSTAT: instantaneous_output_repl_kbps %s", k)
	}
}
