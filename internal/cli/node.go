package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// nodeUsage is what the live allocations on a node hold.
type nodeUsage struct {
	used   api.Resources
	allocs int
}

// usageByNode sums the resources of allocations that still hold them
// (Allocation.Terminal is the server's own rule for that).
func usageByNode(allocs []*api.Allocation) map[string]nodeUsage {
	out := map[string]nodeUsage{}
	for _, a := range allocs {
		if a.Terminal() {
			continue
		}
		u := out[a.NodeID]
		u.used = u.used.Add(a.Resources)
		u.allocs++
		out[a.NodeID] = u
	}
	return out
}

// NodeRow is one node with its usage, the JSON/YAML form of `node list`.
type NodeRow struct {
	*api.Node
	Used   api.Resources `json:"used"`
	Allocs int           `json:"allocs"`
}

// NodeList prints every node with the CPU and memory its live allocations
// use.
func (e *Env) NodeList(ctx context.Context) error {
	nodes, _, err := e.Client.ListNodes(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing nodes: %w", e.Humanize(err))
	}
	// Nodes are shared by every namespace: their use is the allocations
	// of all the namespaces the token may read.
	allocs, _, err := e.Client.ListAllocations(ctx, &api.QueryOptions{Namespace: structs.AllNamespaces})
	hidden := false
	var ae *api.APIError
	switch {
	case errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden):
		hidden = true // a node token: the nodes without their use
	case err != nil:
		return fmt.Errorf("listing allocations: %w", e.Humanize(err))
	}
	usage := usageByNode(allocs)
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].Name != nodes[j].Name {
			return nodes[i].Name < nodes[j].Name
		}
		return nodes[i].ID < nodes[j].ID
	})
	rows := make([]NodeRow, len(nodes))
	for i, n := range nodes {
		u := usage[n.ID]
		rows[i] = NodeRow{Node: n, Used: u.used, Allocs: u.allocs}
	}
	if ok, err := e.printData(rows); ok {
		return err
	}
	if len(nodes) == 0 {
		fmt.Fprintln(e.Out, "No nodes")
		return nil
	}
	t := newTable("ID", "NAME", "STATUS", "DRAIN", "ELIGIBLE", "CPU (USED/TOTAL)", "MEMORY (USED/TOTAL)", "ALLOCS", "LABELS")
	for _, r := range rows {
		t.row(shortID(r.ID), r.Name, r.Status, r.Drain, eligibility(r.Node),
			fmt.Sprintf("%d/%dm", r.Used.CPU, r.Capacity.CPU),
			fmt.Sprintf("%d/%d MiB", r.Used.MemoryMB, r.Capacity.MemoryMB),
			r.Allocs, sortedMap(r.Labels))
	}
	if err := t.write(e.Out); err != nil {
		return err
	}
	if hidden {
		_, err = fmt.Fprintln(e.Out, "\n(used and allocs count nothing: the token may not read allocations in any namespace)")
	}
	return err
}

// NodeStatus prints one node (by ID, unique ID prefix or name) and its
// allocations.
func (e *Env) NodeStatus(ctx context.Context, ref string) error {
	n, _, err := e.Client.Node(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("node %s: %w", ref, e.Humanize(err))
	}
	allocs, _, err := e.Client.NodeAllocations(ctx, n.ID, nil)
	if err != nil {
		return fmt.Errorf("node %s allocations: %w", n.Name, e.Humanize(err))
	}
	for i, a := range allocs {
		allocs[i] = a.Stub() // the embedded jobs are noise here
	}
	u := usageByNode(allocs)[n.ID]
	if ok, err := e.printData(struct {
		NodeRow
		Allocations []*api.Allocation `json:"allocations"`
	}{NodeRow{Node: n, Used: u.used, Allocs: u.allocs}, allocs}); ok {
		return err
	}
	now := e.Now()
	k := &kv{}
	k.add("ID", n.ID)
	k.add("Name", n.Name)
	k.add("Status", n.Status)
	k.add("Drain", n.Drain)
	k.add("Eligible", n.Ready())
	if n.Ineligible != "" {
		k.add("Ineligible", n.Ineligible)
	}
	if n.Datacenter != "" {
		k.add("Datacenter", n.Datacenter)
	}
	k.add("Address", orDash(n.HTTPAddr))
	k.add("Labels", sortedMap(n.Labels))
	k.add("Attributes", sortedMap(n.Attributes))
	k.add("CPU", fmt.Sprintf("%d/%dm used (%s)", u.used.CPU, n.Capacity.CPU, percent(u.used.CPU, n.Capacity.CPU)))
	k.add("Memory", fmt.Sprintf("%d/%d MiB used (%s)", u.used.MemoryMB, n.Capacity.MemoryMB, percent(u.used.MemoryMB, n.Capacity.MemoryMB)))
	k.add("Status updated", timestamp(now, n.StatusUpdatedAt))
	if err := k.write(e.Out); err != nil {
		return err
	}
	fmt.Fprintln(e.Out, "\nAllocations")
	if len(allocs) == 0 {
		fmt.Fprintln(e.Out, "No allocations")
		return nil
	}
	return allocTable(e.Out, now, allocs, false)
}

// eligibility is the ELIGIBLE column: "true", "false", or the reason the
// node gave for refusing placements.
func eligibility(n *api.Node) string {
	if n.Ineligible != "" {
		return "no: " + n.Ineligible
	}
	return fmt.Sprint(n.Ready())
}

func percent(used, total int64) string {
	if total <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(used)/float64(total))
}

// NodeDrain turns draining on (new placements stop, allocations move away)
// or off.
func (e *Env) NodeDrain(ctx context.Context, ref string, enable bool) error {
	return e.NodeDrainWith(ctx, ref, &api.NodeDrainRequest{Enable: enable})
}

// NodeDrainWith turns draining on or off with a deadline (force, or none).
func (e *Env) NodeDrainWith(ctx context.Context, ref string, req *api.NodeDrainRequest) error {
	enable := req.Enable
	// Resolve the name or prefix first so the message names the node.
	n, _, err := e.Client.Node(ctx, ref, nil)
	if err != nil {
		return fmt.Errorf("node %s: %w", ref, e.Humanize(err))
	}
	resp, err := e.Client.DrainNodeWith(ctx, n.ID, req)
	if err != nil {
		return fmt.Errorf("draining node %s: %w", n.Name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	if enable {
		fmt.Fprintf(e.Out, "Node %s (%s) is draining: no new placements; its allocations are being moved (index %d)\n", n.Name, shortID(n.ID), resp.Index)
	} else {
		fmt.Fprintf(e.Out, "Node %s (%s) is eligible for placements again (index %d)\n", n.Name, shortID(n.ID), resp.Index)
	}
	return nil
}

// NodeNames lists node names, for shell completion.
func (e *Env) NodeNames(ctx context.Context) []string {
	nodes, _, err := e.Client.ListNodes(ctx, nil)
	if err != nil {
		return nil
	}
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}
