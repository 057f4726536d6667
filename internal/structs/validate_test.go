package structs

import (
	"errors"
	"strings"
	"testing"
)

// fakeDrivers knows "exec", which requires a "command" in its config.
type fakeDrivers map[string]bool

func (d fakeDrivers) CheckConfig(driver string, config map[string]any) ([]FieldError, bool) {
	if !d[driver] {
		return nil, false
	}
	if _, ok := config["command"]; !ok {
		return []FieldError{{Field: "command", Rule: "is required"}}, true
	}
	return nil, true
}

func (d fakeDrivers) Names() []string {
	var out []string
	for _, n := range []string{"exec", "mock"} {
		if d[n] {
			out = append(out, n)
		}
	}
	return out
}

// TestJobValidateDriver: the driver a job names and its config are checked
// against the rules given, each problem naming its field.
func TestJobValidateDriver(t *testing.T) {
	known := fakeDrivers{"exec": true, "mock": true}
	tests := []struct {
		name    string
		driver  string
		config  map[string]any
		drivers DriverRules
		want    string // "" = valid
	}{
		{"valid", "exec", map[string]any{"command": "/bin/true"}, known, ""},
		{"bad config", "exec", nil, known, "config.command: is required"},
		{"unknown driver", "dockr", nil, known, `driver: unknown driver "dockr" (known: exec, mock)`},
		{"none registered", "exec", nil, fakeDrivers{}, `driver: unknown driver "exec" (no task driver is registered in this program)`},
		{"no rules skip the checks", "dockr", nil, nil, ""},
		{"driver required", "", nil, known, "driver: is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &Job{Name: "web", Driver: tc.driver, Config: tc.config, Resources: Resources{CPU: 1, MemoryMB: 1}}
			j.Canonicalize()
			err := j.Validate(tc.drivers)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 || !strings.HasPrefix(ve.Errors[0].Error(), tc.want) {
				t.Fatalf("err %v, want exactly %q", err, tc.want)
			}
		})
	}
}
