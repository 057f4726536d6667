package scheduler

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func res(cpu, mem int64) structs.Resources { return structs.Resources{CPU: cpu, MemoryMB: mem} }

func liveAlloc(id string, r structs.Resources) *structs.Allocation {
	return &structs.Allocation{ID: id, Resources: r, DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientRunning}
}

func TestCheckNodeFit(t *testing.T) {
	ready := &structs.Node{ID: "n", Status: structs.NodeStatusReady, Capacity: res(1000, 1024)}
	existing := []*structs.Allocation{
		liveAlloc("a", res(500, 512)),
		{ID: "done", Resources: res(1000, 1024), DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientComplete},
		{ID: "stopped", Resources: res(1000, 1024), DesiredStatus: structs.AllocDesiredStop, ClientStatus: structs.AllocClientRunning},
	}
	tests := []struct {
		name    string
		node    *structs.Node
		removed map[string]bool
		place   []structs.Resources
		wantErr error
		wantDim string
	}{
		{"fits", ready, nil, []structs.Resources{res(200, 200)}, nil, ""},
		{"exactly full", ready, nil, []structs.Resources{res(500, 512)}, nil, ""},
		{"cpu short", ready, nil, []structs.Resources{res(501, 10)}, ErrNodeFull, "cpu"},
		{"memory short", ready, nil, []structs.Resources{res(10, 513)}, ErrNodeFull, "memory"},
		{"two placements together too big", ready, nil, []structs.Resources{res(300, 10), res(300, 10)}, ErrNodeFull, "cpu"},
		{"room made by stopping", ready, map[string]bool{"a": true}, []structs.Resources{res(1000, 1024)}, nil, ""},
		{"stops only always fit", ready, nil, nil, nil, ""},
		{"missing node", nil, nil, []structs.Resources{res(1, 1)}, ErrNodeMissing, ""},
		{"down node", &structs.Node{ID: "d", Status: structs.NodeStatusDown, Capacity: res(1000, 1024)}, nil, []structs.Resources{res(1, 1)}, ErrNodeNotReady, ""},
		{"draining node", &structs.Node{ID: "d", Status: structs.NodeStatusReady, Drain: true, Capacity: res(1000, 1024)}, nil, []structs.Resources{res(1, 1)}, ErrNodeNotReady, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []*structs.Allocation
			for i, r := range tt.place {
				ps = append(ps, liveAlloc(string(rune('p'+i)), r))
			}
			err := CheckNodeFit(tt.node, existing, tt.removed, ps)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantDim != "" && (err == nil || !strings.Contains(err.Error(), tt.wantDim)) {
				t.Fatalf("err = %v, want it to name %q", err, tt.wantDim)
			}
		})
	}
}
