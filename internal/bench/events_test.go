package bench

import (
	"errors"
	"fmt"
	"io"
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

// chunked reads r's bytes n at a time, as a socket may hand them over.
type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[k:]
	return k, nil
}

// The line reader gives what readEventLine gives for each whole line,
// however the reads cut the stream: lines longer than the head it keeps,
// markers cut in two, lines ending where a read ends.
func TestEventLineReader(t *testing.T) {
	long := `{"index":15,"groups":[{"topic":"Allocation","type":"AllocationPlaced","events":[` +
		strings.Repeat(`{"key":"a","payload":{"name":"x"}},`, 300) + `{"key":"z"}]}]}`
	stream := strings.Join([]string{
		`{"index":12,"groups":[{"topic":"Job","type":"JobRegistered","events":[{"key":"a"},{"key":"b"}]}]}`,
		`{"index":12}`,
		long,
		`{"index":16,"error":"subscriber dropped","code":"slow_subscriber"}`,
	}, "\n") + "\n"
	want := []eventLine{{index: 12, events: 2}, {index: 12}, {index: 15, events: 301},
		{index: 16, code: "slow_subscriber", msg: "subscriber dropped"}}
	for _, n := range []int{1, 2, 3, 6, 7, 8, 100, 4095, 4096, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			lr := newEventLineReader(&chunked{s: stream, n: n})
			total := 0
			for i, w := range want {
				got, read, err := lr.next()
				total += read
				if err != nil || got != w {
					t.Fatalf("line %d: %+v, %v; want %+v", i, got, err, w)
				}
			}
			if _, read, err := lr.next(); !errors.Is(err, io.EOF) || total+read != len(stream) {
				t.Fatalf("after the last line: %v, %d bytes counted of %d", err, total+read, len(stream))
			}
		})
	}
	for _, tc := range []struct{ name, stream, wantErr string }{
		{"long line without events", `{"index":3,"x":"` + strings.Repeat("y", 5000) + `"}` + "\n", "without events"},
		{"long line without index", `{"x":` + strings.Repeat(`{"key":1},`, 500) + `1}` + "\n", "not understood"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newEventLineReader(&chunked{s: tc.stream, n: 1000}).next()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
