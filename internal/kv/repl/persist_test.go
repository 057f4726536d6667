package repl

import (
	"strings"
	"testing"
)

func TestParseReplState(t *testing.T) {
	if id, off, err := parseReplState("gantry-repl 1\n" + strings.Repeat("a", 40) + " 12\n"); err != nil || off != 12 || len(id) != 40 {
		t.Errorf("parseReplState: %q %d %v", id, off, err)
	}
	for _, bad := range []string{"", "gantry-repl 2\nx 1\n", "gantry-repl 1\n" + strings.Repeat("a", 40) + " -1\n", "gantry-repl 1\nzz 1\n"} {
		if _, _, err := parseReplState(bad); err == nil {
			t.Errorf("parseReplState(%q) accepted", bad)
		}
	}
}
