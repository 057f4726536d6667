// Package driverschema says what each task driver accepts in a job's
// "config" block. Drivers (internal/driver) register their Schema at init;
// the control plane (the API's job validation in internal/server, the job
// file parser in internal/jobspec) checks jobs against the registry without
// importing the drivers, whose shim and cgroup code belong on agents.
// Drivers read their config back through this package's accessors, so what
// the server accepted is exactly what the driver reads.
package driverschema

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Kind is the type of a config option's value. Values arrive decoded from
// JSON (float64, []any) or YAML (int, []any); each kind accepts both.
type Kind uint8

const (
	// KindString is a string.
	KindString Kind = iota + 1
	// KindStringList is a list of strings.
	KindStringList
	// KindInt is a whole number.
	KindInt
	// KindBool is true or false.
	KindBool
	// KindDuration is a Go duration string >= 0 ("500ms", "10s"); numbers
	// are refused as ambiguous (seconds? nanoseconds?).
	KindDuration
	// KindStringMap is a map of string keys to scalar values (strings,
	// numbers, booleans), read as strings: labels, environments, port maps,
	// where YAML users write `8080: 80` as readily as `"8080": "80"`.
	KindStringMap
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindStringList:
		return "string list"
	case KindInt:
		return "int"
	case KindBool:
		return "bool"
	case KindDuration:
		return "duration"
	case KindStringMap:
		return "string map"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Option is one key of a driver's config block.
type Option struct {
	Name string
	Kind Kind
	// Required options must be present and not null; a required string
	// must not be empty.
	Required bool
	// Min and Max bound a KindInt option (inclusive); both zero means
	// unbounded.
	Min, Max int64
	// Doc says what the option is for; the error for a missing required
	// option quotes it.
	Doc string
	// Check, if set, checks the value beyond its kind (a port's syntax, a
	// signal's name) once the kind is right; it gets the value as the
	// accessor of the kind returns it (string, []string, int64, bool,
	// time.Duration, map[string]string). Its error becomes the option's
	// rule, so it should name what is wrong ("\"80x\": not a port").
	Check func(v any) error
}

// Schema is everything a driver accepts in its config block.
type Schema struct {
	// Driver is the name jobs use in their "driver" field.
	Driver  string
	Options []Option
}

// check reports what makes s unusable; Register refuses such a schema.
func (s *Schema) check() error {
	if s.Driver == "" {
		return fmt.Errorf("schema without a driver name")
	}
	seen := make(map[string]bool, len(s.Options))
	for i, o := range s.Options {
		switch {
		case o.Name == "":
			return fmt.Errorf("driver %s: option %d has no name", s.Driver, i)
		case seen[o.Name]:
			return fmt.Errorf("driver %s: option %q declared twice", s.Driver, o.Name)
		case o.Kind < KindString || o.Kind > KindStringMap:
			return fmt.Errorf("driver %s: option %q has unknown %s", s.Driver, o.Name, o.Kind)
		case o.Min > o.Max:
			return fmt.Errorf("driver %s: option %q has min %d > max %d", s.Driver, o.Name, o.Min, o.Max)
		case (o.Min != 0 || o.Max != 0) && o.Kind != KindInt:
			return fmt.Errorf("driver %s: option %q is a %s: only ints take min and max", s.Driver, o.Name, o.Kind)
		}
		seen[o.Name] = true
	}
	return nil
}

// Validate returns every problem of config, field names relative to the
// config block: keys no option reads (so a typo such as "comand" is refused
// rather than ignored), sorted, then each option's problem in declaration
// order.
func (s *Schema) Validate(config map[string]any) []structs.FieldError {
	var errs []structs.FieldError
	if len(config) > 0 {
		var unknown []string
		for k := range config {
			if s.option(k) == nil {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			errs = append(errs, structs.FieldError{Field: k, Rule: fmt.Sprintf("unknown option (known: %v)", s.names())})
		}
	}
	for i := range s.Options {
		if fe := s.Options[i].validate(config); fe != nil {
			errs = append(errs, *fe)
		}
	}
	return errs
}

func (s *Schema) option(name string) *Option {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}

func (s *Schema) names() []string {
	out := make([]string, len(s.Options))
	for i, o := range s.Options {
		out[i] = o.Name
	}
	return out
}

// validate returns the option's problem in config, or nil.
func (o *Option) validate(config map[string]any) *structs.FieldError {
	v, present := config[o.Name]
	if !present || v == nil {
		if o.Required {
			return o.missing()
		}
		return nil
	}
	var (
		val any
		fe  *structs.FieldError
	)
	switch o.Kind {
	case KindString:
		var s string
		s, fe = decodeString(o.Name, v)
		if fe == nil && s == "" && o.Required {
			return o.missing()
		}
		val = s
	case KindStringList:
		val, fe = decodeStrings(o.Name, v)
	case KindInt:
		var n int64
		n, fe = decodeInt(o.Name, v)
		if fe == nil && (o.Min != 0 || o.Max != 0) && (n < o.Min || n > o.Max) {
			return &structs.FieldError{Field: o.Name, Rule: fmt.Sprintf("must be between %d and %d (got %d)", o.Min, o.Max, n)}
		}
		val = n
	case KindBool:
		val, fe = decodeBool(o.Name, v)
	case KindDuration:
		val, fe = decodeDuration(o.Name, v)
	case KindStringMap:
		val, fe = decodeStringMap(o.Name, v)
	default:
		return &structs.FieldError{Field: o.Name, Rule: "has an option kind this build does not know"}
	}
	if fe == nil && o.Check != nil {
		if err := o.Check(val); err != nil {
			return &structs.FieldError{Field: o.Name, Rule: err.Error()}
		}
	}
	return fe
}

func (o *Option) missing() *structs.FieldError {
	rule := "is required"
	if o.Doc != "" {
		rule += " (" + o.Doc + ")"
	}
	return &structs.FieldError{Field: o.Name, Rule: rule}
}

func decodeString(key string, v any) (string, *structs.FieldError) {
	s, ok := v.(string)
	if !ok {
		return "", &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be a string (got %T)", v)}
	}
	return s, nil
}

func decodeStrings(key string, v any) ([]string, *structs.FieldError) {
	switch l := v.(type) {
	case []string:
		return slices.Clone(l), nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, &structs.FieldError{Field: fmt.Sprintf("%s[%d]", key, i), Rule: fmt.Sprintf("must be a string (got %T)", e)}
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be a list of strings (got %T)", v)}
}

func decodeInt(key string, v any) (int64, *structs.FieldError) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	case float64:
		if n == float64(int64(n)) {
			return int64(n), nil
		}
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
	}
	return 0, &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be an integer (got %v)", v)}
}

func decodeBool(key string, v any) (bool, *structs.FieldError) {
	b, ok := v.(bool)
	if !ok {
		return false, &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be true or false (got %v)", v)}
	}
	return b, nil
}

func decodeDuration(key string, v any) (time.Duration, *structs.FieldError) {
	s, ok := v.(string)
	if !ok {
		return 0, &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be a duration string like \"10s\" (got %v)", v)}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &structs.FieldError{Field: key, Rule: fmt.Sprintf("invalid duration %q (want e.g. \"500ms\", \"10s\")", s)}
	}
	if d < 0 {
		return 0, &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be >= 0 (got %s)", s)}
	}
	return d, nil
}

func decodeStringMap(key string, v any) (map[string]string, *structs.FieldError) {
	switch m := v.(type) {
	case map[string]string:
		out := make(map[string]string, len(m))
		for k, e := range m {
			out[k] = e
		}
		return out, nil
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, e := range m {
			switch e := e.(type) {
			case string:
				out[k] = e
			case bool:
				out[k] = strconv.FormatBool(e)
			case int, int64, json.Number:
				out[k] = fmt.Sprint(e)
			case float64:
				out[k] = strconv.FormatFloat(e, 'f', -1, 64)
			default:
				return nil, &structs.FieldError{Field: key + "." + k, Rule: fmt.Sprintf("must be a string, number or boolean (got %T)", e)}
			}
		}
		return out, nil
	}
	return nil, &structs.FieldError{Field: key, Rule: fmt.Sprintf("must be a map of strings (got %T)", v)}
}

// The accessors below read one option of a config block that Validate
// accepted; an absent, null or (had it not been validated) malformed value
// reads as the zero value.

// String returns a KindString option.
func String(config map[string]any, key string) string {
	if config[key] == nil {
		return ""
	}
	v, _ := decodeString(key, config[key])
	return v
}

// Strings returns a KindStringList option, as a copy.
func Strings(config map[string]any, key string) []string {
	if config[key] == nil {
		return nil
	}
	v, _ := decodeStrings(key, config[key])
	return v
}

// Int returns a KindInt option.
func Int(config map[string]any, key string) int64 {
	if config[key] == nil {
		return 0
	}
	v, _ := decodeInt(key, config[key])
	return v
}

// Bool returns a KindBool option.
func Bool(config map[string]any, key string) bool {
	if config[key] == nil {
		return false
	}
	v, _ := decodeBool(key, config[key])
	return v
}

// StringMap returns a KindStringMap option, as a copy with every value a
// string.
func StringMap(config map[string]any, key string) map[string]string {
	if config[key] == nil {
		return nil
	}
	v, _ := decodeStringMap(key, config[key])
	return v
}

// Duration returns a KindDuration option.
func Duration(config map[string]any, key string) time.Duration {
	if config[key] == nil {
		return 0
	}
	v, _ := decodeDuration(key, config[key])
	return v
}
