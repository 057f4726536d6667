package jobspec

import (
	"reflect"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestParsePorts: a job's network block reads the same from YAML and JSON,
// and broken ports are refused with the field and its line.
func TestParsePorts(t *testing.T) {
	const head = "name: web\ndriver: mock\nresources: {cpu: 100, memory_mb: 32}\n"
	want := &structs.Network{Ports: []structs.Port{{Label: "http", Static: 8080}, {Label: "admin", To: 80}}}
	for _, doc := range []string{
		head + "network:\n  ports:\n    - label: http\n      static: 8080\n    - {label: admin, to: 80}\n",
		`{"name": "web", "driver": "mock", "resources": {"cpu": 100, "memory_mb": 32},
		  "network": {"ports": [{"label": "http", "static": 8080}, {"label": "admin", "to": 80}]}}`,
	} {
		job, err := parseAndValidate([]byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(job.Network, want) {
			t.Fatalf("network = %+v, want %+v", job.Network, want)
		}
	}

	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty block", "network: {ports: []}\n", nil},
		{"unknown field", "network:\n  ports:\n    - {label: http, statc: 80}\n",
			[]string{`line 6: network.ports[0].statc: unknown field`}},
		{"not a number", "network:\n  ports:\n    - {label: http, static: eighty}\n",
			[]string{`line 6: network.ports[0].static: expected an integer`}},
		{"no label", "network:\n  ports:\n    - {static: 80}\n",
			[]string{`line 6: network.ports[0].label: is required`}},
		{"bad label", "network:\n  ports:\n    - {label: http-alt}\n",
			[]string{`line 6: network.ports[0].label: must start with a letter`}},
		{"twice", "network:\n  ports:\n    - {label: http}\n    - {label: HTTP}\n",
			[]string{`line 7: network.ports[1].label: "HTTP" is given twice`}},
		{"static out of range", "network:\n  ports:\n    - {label: http, static: 70000}\n",
			[]string{`line 6: network.ports[0].static: must be a port number`}},
		{"same static twice", "network:\n  ports:\n    - {label: a, static: 80}\n    - {label: b, static: 80}\n",
			[]string{`line 7: network.ports[1].static: port 80 is also asked for by "a"`}},
		{"to out of range", "network:\n  ports:\n    - {label: a, to: -1}\n",
			[]string{`line 6: network.ports[0].to: must be a port number`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAndValidate([]byte(head+tc.doc), nil)
			wantProblems(t, err, tc.want)
		})
	}
}
