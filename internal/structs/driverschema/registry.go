package driverschema

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gantry-project/gantry/internal/structs"
)

// Registry holds the schemas of known drivers by name. It implements
// structs.DriverRules. The zero value is empty and ready; it is safe for
// concurrent use.
type Registry struct {
	mu      sync.RWMutex
	schemas map[string]*Schema // guarded by mu
}

var _ structs.DriverRules = (*Registry)(nil)

// Default is the registry the built-in drivers fill at init and the server
// and the job parser read.
var Default = &Registry{}

// Register adds a driver's schema to Default. It panics on a schema that
// Registry.Register refuses: drivers call it from init, where a bad or
// duplicate schema is a programming error.
func Register(s Schema) {
	if err := Default.Register(s); err != nil {
		panic("driverschema: " + err.Error())
	}
}

// Register adds a driver's schema, refusing a driver registered before or
// a malformed schema. The registry keeps its own copy.
func (r *Registry) Register(s Schema) error {
	if err := s.check(); err != nil {
		return err
	}
	s.Options = slices.Clone(s.Options)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.schemas[s.Driver]; dup {
		return fmt.Errorf("driver %q registered twice", s.Driver)
	}
	if r.schemas == nil {
		r.schemas = map[string]*Schema{}
	}
	r.schemas[s.Driver] = &s
	return nil
}

// Schema returns the named driver's schema (not to be modified).
func (r *Registry) Schema(driver string) (*Schema, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.schemas[driver]
	return s, ok
}

// CheckConfig implements structs.DriverRules.
func (r *Registry) CheckConfig(driver string, config map[string]any) ([]structs.FieldError, bool) {
	s, ok := r.Schema(driver)
	if !ok {
		return nil, false
	}
	return s.Validate(config), true
}

// Names implements structs.DriverRules.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.schemas))
	for name := range r.schemas {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
