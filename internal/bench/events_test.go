package bench

import (
	"strings"
	"testing"
)

func TestReadEventLine(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       eventLine
		wantErr    string
	}{
		{"events", `{"index":12,"groups":[{"topic":"Allocation","type":"AllocationPlaced","namespace":"default","events":[{"key":"a","payload":{"name":"a[0]"}},{"key":"b"}]},{"topic":"Plan","type":"PlanApplied","events":[{"key":"web","payload":{"job_id":"web"}}]}]}`,
			eventLine{index: 12, events: 3}, ""},
		{"heartbeat", `{"index":40}`, eventLine{index: 40}, ""},
		{"error", `{"index":9,"error":"subscriber dropped","code":"slow_subscriber"}`,
			eventLine{index: 9, code: "slow_subscriber", msg: "subscriber dropped"}, ""},
		{"not a line", `hello`, eventLine{}, "not understood"},
		{"no index", `{"index":"x"}`, eventLine{}, "without an index"},
		{"cut short", `{"index":7,"err`, eventLine{}, "undecodable line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readEventLine([]byte(tc.line))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzReadEventLine(f *testing.F) {
	for _, s := range []string{`{"index":1}`, `{"index":2,"groups":[{"topic":"Job","type":"JobRegistered","events":[{"key":"web"}]}]}`, `{"index":3,"code":"reset"}`, ``, `{"index":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := readEventLine(b)
		if err == nil && l.events < 0 {
			t.Fatalf("%+v", l)
		}
	})
}
