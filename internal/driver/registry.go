// Package driver runs tasks for the agent: exec (real processes), mock
// (simulated run time and exit code, for tests and benchmarks).
package driver

import "github.com/gantry-project/gantry/internal/structs"

// validators maps driver names to their config checks. It is the one list
// of known drivers: the server validates job documents against it, so a
// job naming an unknown driver or a bad config is refused at submit time.
var validators = map[string]structs.DriverValidator{}

// registerValidator is called from each driver's file at init.
func registerValidator(name string, v structs.DriverValidator) {
	if _, dup := validators[name]; dup {
		panic("driver: duplicate registration of " + name)
	}
	validators[name] = v
}

// Validators returns the config validator of every known driver.
func Validators() map[string]structs.DriverValidator {
	out := make(map[string]structs.DriverValidator, len(validators))
	for k, v := range validators {
		out[k] = v
	}
	return out
}
