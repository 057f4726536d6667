package driver

import (
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// TestSchemasRegistered: linking this package registers every built-in
// driver's schema in driverschema.Default, which the server and the job
// parser read, and the registered rules are the ones the driver applies.
func TestSchemasRegistered(t *testing.T) {
	if names := driverschema.Default.Names(); !slices.Equal(names, []string{"exec", "mock"}) {
		t.Fatalf("registered drivers %v, want [exec mock]", names)
	}
	for _, d := range []Driver{&ExecDriver{}, NewMock(nil)} {
		for _, config := range []map[string]any{nil, {"command": "/bin/true"}, {"run_for": "bad"}, {"exit_code": 1.0}} {
			want := d.Validate(config)
			got, known := driverschema.Default.CheckConfig(d.Name(), config)
			if !known || !slices.Equal(got, want) {
				t.Errorf("%s %v: registry says %v (known %v), driver %v", d.Name(), config, got, known, want)
			}
		}
	}
}
