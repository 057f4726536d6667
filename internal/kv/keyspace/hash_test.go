package keyspace

import (
	"strings"
	"testing"
)

func hashFields(h *Hash) []string {
	var out []string
	h.Each(func(f, v []byte) { out = append(out, string(f)+"="+string(v)) })
	return out
}

// A small hash keeps insertion order within its limits (Redis's
// listpack); past them it becomes a map.
func TestHashLimits(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name  string
		lim   HashLimits
		sets  [][2]string
		small bool
		order []string // nil: not checked
	}{
		{"default", DefaultHashLimits, [][2]string{{"b", "1"}, {"a", "2"}, {"c", "3"}, {"a", "4"}}, true,
			[]string{"b=1", "a=4", "c=3"}},
		{"update in place", DefaultHashLimits, [][2]string{{"b", "1"}, {"a", "2"}, {"c", "3"}, {"a", "longer"}, {"b", ""},
			{"c", strings.Repeat("y", 200)[:64]}, {"a", "s"}}, true,
			[]string{"b=", "a=s", "c=" + strings.Repeat("y", 64)}},
		{"update in place, longer length prefix", HashLimits{Entries: 10, Value: 2000}, [][2]string{{"a", "1"}, {"b", "2"},
			{"a", long[:300]}, {"b", long[:130]}, {"a", "x"}}, true, []string{"a=x", "b=" + long[:130]}},
		{"long value kept small", HashLimits{Entries: 10, Value: 2000}, [][2]string{{"z", long}, {"a", "1"}}, true,
			[]string{"z=" + long, "a=1"}},
		{"long value", DefaultHashLimits, [][2]string{{"z", long}, {"a", "1"}}, false, nil},
		{"long field", HashLimits{Entries: 10, Value: 3}, [][2]string{{"abcd", "1"}}, false, nil},
		{"entries", HashLimits{Entries: 2, Value: 64}, [][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}}, false, nil},
		{"entries update", HashLimits{Entries: 2, Value: 64}, [][2]string{{"a", "1"}, {"b", "2"}, {"b", "3"}}, true,
			[]string{"a=1", "b=3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHash()
			for _, s := range tc.sets {
				h.SetWithin([]byte(s[0]), []byte(s[1]), tc.lim)
			}
			if h.Small() != tc.small {
				t.Fatalf("small %v", h.Small())
			}
			if tc.order != nil && strings.Join(hashFields(h), ",") != strings.Join(tc.order, ",") {
				t.Errorf("fields %v, want %v", hashFields(h), tc.order)
			}
			c := h.Clone()
			if c.Small() != h.Small() || strings.Join(hashFields(c), ",") != strings.Join(hashFields(h), ",") && h.Small() {
				t.Errorf("clone %v of %v", hashFields(c), hashFields(h))
			}
			if c.Len() != h.Len() {
				t.Errorf("clone has %d fields, %d", c.Len(), h.Len())
			}
		})
	}
}
