package kv

import (
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/script"
)

// tickClock moves on by step at every reading: a command that read the
// clock again would see its own keys expire.
type tickClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// TestScriptTimeFrozen: the commands of a script or function see the time
// the script started at, as in Redis (unit/scripting "Script block the
// time during execution"): a key set with PX 5 is still there for the
// script's next command however late it runs, and gone for the next
// command from a client.
func TestScriptTimeFrozen(t *testing.T) {
	env := startServer(t, func(c *Config) {
		c.Clock = &tickClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: 10 * time.Millisecond}
	})
	mustDo(t, env.rdb, "f", "function", "load", "#!lua name=f\n"+
		"redis.register_function('f', function(k) redis.call('set', k[1], 'v', 'px', 5) return {redis.call('exists', k[1]), redis.call('pttl', k[1])} end)")
	body := "redis.call('set', KEYS[1], 'v', 'px', 5) return {redis.call('exists', KEYS[1]), redis.call('pttl', KEYS[1])}"
	sha := script.SHA1Hex(body)
	for _, tc := range []struct {
		name string
		args []any
	}{
		{"eval", []any{"eval", body, 1, "k1"}},
		{"evalsha", []any{"evalsha", sha, 1, "k2"}},
		{"fcall", []any{"fcall", "f", 1, "k3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := env.rdb.Do(t.Context(), tc.args...).Slice()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0] != int64(1) || got[1] != int64(5) {
				t.Errorf("exists, pttl in the script: %v, want [1 5]", got)
			}
			key := tc.args[3].(string)
			if n := env.rdb.Exists(t.Context(), key).Val(); n != 0 {
				t.Errorf("exists after the script: %d, want 0", n)
			}
		})
	}
}
