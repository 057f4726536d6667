package scheduler

import (
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestConstraintsCheck(t *testing.T) {
	node := &structs.Node{
		ID: "n1", Status: structs.NodeStatusReady,
		Labels:     map[string]string{"zone": "a", "disk": "ssd"},
		Attributes: map[string]string{"os": "linux", "arch": "arm64"},
	}
	tests := []struct {
		name string
		c    structs.Constraint
		pass bool
	}{
		{"equal match", structs.Constraint{Label: "zone", Operator: "=", Value: "a"}, true},
		{"equal mismatch", structs.Constraint{Label: "zone", Operator: "=", Value: "b"}, false},
		{"equal missing label", structs.Constraint{Label: "rack", Operator: "=", Value: "a"}, false},
		{"not equal match", structs.Constraint{Label: "zone", Operator: "!=", Value: "b"}, true},
		{"not equal mismatch", structs.Constraint{Label: "zone", Operator: "!=", Value: "a"}, false},
		{"not equal missing label passes", structs.Constraint{Label: "rack", Operator: "!=", Value: "a"}, true},
		{"in match", structs.Constraint{Label: "zone", Operator: "in", Values: []string{"b", "a"}}, true},
		{"in mismatch", structs.Constraint{Label: "zone", Operator: "in", Values: []string{"b", "c"}}, false},
		{"in missing label", structs.Constraint{Label: "rack", Operator: "in", Values: []string{""}}, false},
		{"regexp match", structs.Constraint{Label: "disk", Operator: "regexp", Value: "^(ssd|nvme)$"}, true},
		{"regexp mismatch", structs.Constraint{Label: "disk", Operator: "regexp", Value: "^hdd"}, false},
		{"regexp missing label", structs.Constraint{Label: "rack", Operator: "regexp", Value: ".*"}, false},
		{"regexp invalid matches nothing", structs.Constraint{Label: "disk", Operator: "regexp", Value: "("}, false},
		{"attr equal", structs.Constraint{Label: "attr.os", Operator: "=", Value: "linux"}, true},
		{"attr mismatch", structs.Constraint{Label: "attr.arch", Operator: "=", Value: "amd64"}, false},
		{"attr missing", structs.Constraint{Label: "attr.gpu", Operator: "=", Value: "1"}, false},
		{"attr regexp", structs.Constraint{Label: "attr.arch", Operator: "regexp", Value: "arm"}, true},
		{"unknown operator matches nothing", structs.Constraint{Label: "zone", Operator: "~", Value: "a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, _ := CompileConstraints([]structs.Constraint{tt.c})
			got := cs.Check(node)
			if (got == "") != tt.pass {
				t.Fatalf("Check(%s) = %q, want pass=%v", tt.c, got, tt.pass)
			}
			if !tt.pass && got != "constraint "+tt.c.String() {
				t.Fatalf("reason = %q, want %q", got, "constraint "+tt.c.String())
			}
		})
	}
}

func TestCompileConstraintsReportsBadRegexp(t *testing.T) {
	_, err := CompileConstraints([]structs.Constraint{{Label: "x", Operator: "regexp", Value: "(["}})
	if err == nil {
		t.Fatal("want an error for an invalid regexp")
	}
}

func TestNodeStatusReason(t *testing.T) {
	tests := []struct {
		name string
		n    structs.Node
		want string
	}{
		{"ready", structs.Node{Status: structs.NodeStatusReady}, ""},
		{"down", structs.Node{Status: structs.NodeStatusDown}, ReasonNotReady},
		{"draining", structs.Node{Status: structs.NodeStatusReady, Drain: true}, ReasonDraining},
		{"down and draining", structs.Node{Status: structs.NodeStatusDown, Drain: true}, ReasonNotReady},
		{"ineligible", structs.Node{Status: structs.NodeStatusReady, Ineligible: "data disk full"}, ReasonIneligible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeStatusReason(&tt.n); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
