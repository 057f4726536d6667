package structs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// callSeeds are valid and invalid calls: the fuzz seed corpus and the
// table below.
var callSeeds = []string{
	`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"queue","role":"ml","failover_timeout":60}}}`,
	`{"framework_id":"fw-1","type":"SUBSCRIBE","subscribe":{"framework_info":{"id":"fw-1","name":"queue"}}}`,
	`{"framework_id":"fw-1","type":"ACCEPT","accept":{"offer_ids":["o-1"],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"task_id":"t1","agent_id":"n1","resources":{"cpu":100,"memory_mb":64},"driver":"exec","config":{"command":"/bin/true"}}]}}],"filters":{"refuse_seconds":5}}}`,
	`{"framework_id":"fw-1","type":"DECLINE","decline":{"offer_ids":["o-1","o-2"],"filters":{"refuse_seconds":0}}}`,
	`{"framework_id":"fw-1","type":"KILL","kill":{"task_id":"t1"}}`,
	`{"framework_id":"fw-1","type":"ACKNOWLEDGE","acknowledge":{"task_id":"t1","uuid":"u-1"}}`,
	`{"framework_id":"fw-1","type":"RECONCILE","reconcile":{"tasks":[{"task_id":"t1"}]}}`,
	`{"framework_id":"fw-1","type":"REVIVE"}`,
	`{"framework_id":"fw-1","type":"SUPPRESS"}`,
	`{"framework_id":"fw-1","type":"TEARDOWN"}`,
	`{"type":"ACCEPT"}`,
	`{"framework_id":"fw-1","type":"KILL","accept":{"offer_ids":[]}}`,
	`{"framework_id":"fw-1","type":"DECLINE","decline":{"offer_ids":["o-1","o-1"],"filters":{"refuse_seconds":-1}}}`,
	`{"framework_id":"fw-1","type":"ACCEPT","accept":{"offer_ids":["o-1"],"operations":[{"type":"RESERVE"}]}}`,
	`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"../etc"}}}`,
	`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"q"}},"extra":1}`,
	`{"type":"REVIVE","framework_id":"fw-1"} {}`,
	``, `null`, `[]`, `{"type":7}`,
}

func TestDecodeFrameworkCall(t *testing.T) {
	tests := []struct {
		body   string
		fields []string // fields named in the error; nil = valid
	}{
		{callSeeds[0], nil},
		{callSeeds[2], nil},
		{callSeeds[7], nil},
		{`{"type":"ACCEPT"}`, []string{"accept", "framework_id"}},
		{`{"framework_id":"fw-1","type":"KILL","accept":{"offer_ids":[]}}`, []string{"kill", "accept"}},
		{`{"framework_id":"fw-1","type":"DECLINE","decline":{"offer_ids":["o-1","o-1"],"filters":{"refuse_seconds":-1}}}`,
			[]string{"decline.offer_ids[1]", "decline.filters.refuse_seconds"}},
		{`{"framework_id":"fw-1","type":"ACCEPT","accept":{"offer_ids":["o-1"],"operations":[{"type":"RESERVE"}]}}`, []string{"accept.operations[0].type"}},
		{`{"framework_id":"fw-1","type":"ACCEPT","accept":{"offer_ids":["o-1"],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"task_id":"t 1","agent_id":"","resources":{"cpu":0,"memory_mb":1}}]}}]}}`,
			[]string{"task_infos[0].task_id", "task_infos[0].agent_id", "task_infos[0].resources", "task_infos[0].driver"}},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"../etc","failover_timeout":1e12}}}`,
			[]string{"subscribe.framework_info.name", "subscribe.framework_info.failover_timeout"}},
		{`{"type":"LAUNCH_GROUP","framework_id":"fw-1"}`, []string{"type"}},
	}
	for _, tt := range tests {
		c, err := DecodeFrameworkCall([]byte(tt.body))
		if tt.fields == nil {
			if err != nil || c == nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		var ce *CallError
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidCall) {
			t.Errorf("%s: error %v, want a *CallError", tt.body, err)
			continue
		}
		for _, f := range tt.fields {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("%s: error %q does not name %s", tt.body, err, f)
			}
		}
	}
	for _, bad := range []string{``, `null`, `[]`, `{"type":7}`, `{"type":"REVIVE","framework_id":"fw-1"} {}`, `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"q"}},"extra":1}`} {
		if _, err := DecodeFrameworkCall([]byte(bad)); !errors.Is(err, ErrInvalidCall) {
			t.Errorf("%q: %v, want ErrInvalidCall", bad, err)
		}
	}
	if _, err := DecodeFrameworkCall(make([]byte, MaxCallBytes+1)); !errors.Is(err, ErrInvalidCall) {
		t.Errorf("an oversized call: %v", err)
	}
}

// FuzzDecodeFrameworkCall: no input makes the decoder panic, every
// refusal is an ErrInvalidCall, and a call it accepts encodes and decodes
// back to itself and still validates.
func FuzzDecodeFrameworkCall(f *testing.F) {
	for _, s := range callSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeFrameworkCall(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidCall) {
				t.Fatalf("error %v is not an ErrInvalidCall", err)
			}
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("encoding an accepted call: %v", err)
		}
		c2, err := DecodeFrameworkCall(b)
		if err != nil {
			t.Fatalf("an accepted call, encoded, is refused: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(normalize(c), normalize(c2)) {
			t.Fatalf("round trip changed the call:\n%+v\n%+v", c, c2)
		}
	})
}

// normalize re-encodes a call to compare calls by meaning (JSON numbers
// in driver configs decode as float64 either way).
func normalize(c *FrameworkCall) string {
	b, _ := json.Marshal(c)
	return string(b)
}
