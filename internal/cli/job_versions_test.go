package cli

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestParseMeta(t *testing.T) {
	cases := []struct {
		in   []string
		want map[string]string
		err  string
	}{
		{nil, nil, ""},
		{[]string{"a=1", "b=x=y", "c="}, map[string]string{"a": "1", "b": "x=y", "c": ""}, ""},
		{[]string{"a"}, nil, "want KEY=VALUE"},
		{[]string{"=1"}, nil, "want KEY=VALUE"},
		{[]string{"a=1", "a=2"}, nil, "given twice"},
	}
	for _, tc := range cases {
		got, err := ParseMeta(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("%q: %v %v", tc.in, got, err)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Fatalf("%q: %v", tc.in, got)
			}
		}
	}
}

func TestReadPayloadLimit(t *testing.T) {
	if _, err := ReadPayload("-", strings.NewReader(strings.Repeat("x", structs.MaxDispatchPayload+1))); err == nil {
		t.Fatal("oversized payload accepted")
	}
	b, err := ReadPayload("-", strings.NewReader("hello"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestPlanSummary(t *testing.T) {
	p := &api.JobPlanResponse{Place: 1, Replace: 2, InPlace: 3, Stop: map[string]int{"scaled down": 1}, Unplaced: 2}
	want := "  - place 1 copy\n  - replace (destructive update) 2 copies\n  - update in place 3 copies\n" +
		"  - stop (scaled down) 1 copy\n  - cannot place 2 copies\n"
	if got := PlanSummary(p); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := PlanSummary(&api.JobPlanResponse{}); got != "  - no change\n" {
		t.Fatalf("empty plan: %q", got)
	}
}

// FuzzParseMeta: any flags are accepted as KEY=VALUE pairs or refused with
// a message; accepted keys are non-empty and bounded in number.
func FuzzParseMeta(f *testing.F) {
	f.Add("a=1", "b=2")
	f.Add("=", "a")
	f.Add("a=1", "a=1")
	f.Fuzz(func(t *testing.T, a, b string) {
		m, err := ParseMeta([]string{a, b})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for k := range m {
			if k == "" {
				t.Fatal("empty key accepted")
			}
		}
	})
}
