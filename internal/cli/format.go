package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// shortID is the 8-character prefix shown in tables; commands accept any
// unique prefix back.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// age renders the time since a unix-nanosecond instant compactly: 45s,
// 12m, 3h, 5d.
func age(now time.Time, unixNano int64) string {
	if unixNano == 0 {
		return "-"
	}
	d := now.Sub(time.Unix(0, unixNano))
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// timestamp renders an instant as local RFC 3339 plus its age.
func timestamp(now time.Time, unixNano int64) string {
	if unixNano == 0 {
		return "-"
	}
	t := time.Unix(0, unixNano).In(now.Location())
	return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), age(now, unixNano))
}

func cpuMem(r api.Resources) string {
	return fmt.Sprintf("%dm CPU, %d MiB", r.CPU, r.MemoryMB)
}

// placementFailureText explains unplaced copies in one line:
// "2 unplaced (10 nodes evaluated): 3 nodes excluded by constraint zone = a,
// 7 by memory".
func placementFailureText(pf *api.PlacementFailure) string {
	if pf == nil {
		return ""
	}
	type reason struct {
		what string
		n    int
	}
	var rs []reason
	for k, n := range pf.NodesFiltered {
		rs = append(rs, reason{k, n})
	}
	var ex []reason
	for k, n := range pf.NodesExhausted {
		ex = append(ex, reason{k, n})
	}
	order := func(s []reason) {
		sort.Slice(s, func(i, j int) bool {
			if s[i].n != s[j].n {
				return s[i].n > s[j].n
			}
			return s[i].what < s[j].what
		})
	}
	order(rs)
	order(ex)
	rs = append(rs, ex...) // filters first: they explain more than room does

	var b strings.Builder
	fmt.Fprintf(&b, "%d unplaced", pf.Unplaced)
	if pf.NodesEvaluated > 0 {
		fmt.Fprintf(&b, " (%d %s evaluated)", pf.NodesEvaluated, plural(pf.NodesEvaluated, "node", "nodes"))
	}
	for i, r := range rs {
		if i == 0 {
			fmt.Fprintf(&b, ": %d %s excluded by %s", r.n, plural(r.n, "node", "nodes"), r.what)
		} else {
			fmt.Fprintf(&b, ", %d by %s", r.n, r.what)
		}
	}
	if len(rs) == 0 && pf.Message != "" {
		b.WriteString(": " + pf.Message)
	}
	return sanitize(b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sortedMap renders a label map as "k=v, k=v" in key order.
func sortedMap(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// clientStatuses in the order summaries show them.
var clientStatuses = []string{
	structs.AllocClientPending, structs.AllocClientRunning, structs.AllocClientComplete,
	structs.AllocClientFailed, structs.AllocClientLost,
}
