package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestEventStream(t *testing.T) {
	const lines = `{"index":7,"groups":[{"topic":"Job","type":"JobRegistered","namespace":"default","events":[{"key":"web","payload":{"id":"web"}}]}]}
{"index":9}
{"index":12,"groups":[{"topic":"Allocation","type":"AllocationPlaced","events":[{"key":"a1","payload":{}}]},{"topic":"Plan","type":"PlanApplied","events":[{"key":"web"}]}]}
{"index":12,"error":"subscriber dropped: it fell behind","code":"slow_subscriber"}
`
	tests := []struct {
		format string
		want   []string
	}{
		{FormatTable, []string{"INDEX      TOPIC       TYPE                   KEY", "7          Job         JobRegistered          web", "12         Allocation  AllocationPlaced       a1", "12         Plan        PlanApplied            web"}},
		{FormatJSON, []string{`{"topic":"Job","type":"JobRegistered","key":"web","namespace":"default","index":7,"payload":{"id":"web"}}`,
			`{"topic":"Plan","type":"PlanApplied","key":"web","index":12}`}},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			f := newFakeServer(t)
			var query string
			f.mux.HandleFunc("GET /v1/event/stream", func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.RawQuery
				w.Header().Set("Content-Type", "application/x-ndjson")
				fmt.Fprint(w, lines)
			})
			e := newEnv(t, f.srv.URL, tc.format)
			err := e.EventStream(context.Background(), EventStreamOptions{Topics: []string{"Job", "Allocation"}, Keys: []string{"web"}, Resume: true, Index: 5})
			if err == nil || !strings.Contains(err.Error(), "fell behind") || !strings.Contains(err.Error(), "--index 12") {
				t.Fatalf("err %v, want the server's reason and where to resume", err)
			}
			if query != "index=5&key=web&topic=Job%2CAllocation" {
				t.Fatalf("query %q", query)
			}
			out := e.out.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w+"\n") {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
