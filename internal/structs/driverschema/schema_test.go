package driverschema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var testSchema = Schema{Driver: "t", Options: []Option{
	{Name: "cmd", Kind: KindString, Required: true, Doc: "the program"},
	{Name: "args", Kind: KindStringList},
	{Name: "code", Kind: KindInt, Min: 0, Max: 255},
	{Name: "n", Kind: KindInt},
	{Name: "on", Kind: KindBool},
	{Name: "wait", Kind: KindDuration},
}}

func TestSchemaValidate(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   []string // "field: rule substring"
	}{
		{"json values", map[string]any{"cmd": "x", "args": []any{"a"}, "code": 3.0, "n": -7.0, "on": true, "wait": "1s"}, nil},
		{"yaml values", map[string]any{"cmd": "x", "args": []string{"a"}, "code": 3, "n": json.Number("9"), "wait": "0s"}, nil},
		{"null is absent", map[string]any{"cmd": "x", "args": nil, "code": nil}, nil},
		{"missing required", nil, []string{"cmd: is required (the program)"}},
		{"empty required string", map[string]any{"cmd": ""}, []string{"cmd: is required"}},
		{"null required", map[string]any{"cmd": nil}, []string{"cmd: is required"}},
		{"unknown keys sorted, then options", map[string]any{"zz": 1, "aa": 1},
			[]string{"aa: unknown option (known: [cmd args code n on wait])", "zz: unknown option", "cmd: is required"}},
		{"string type", map[string]any{"cmd": 3.0}, []string{"cmd: must be a string (got float64)"}},
		{"list type", map[string]any{"cmd": "x", "args": "-c"}, []string{"args: must be a list of strings"}},
		{"list element", map[string]any{"cmd": "x", "args": []any{"a", 1.0}}, []string{"args[1]: must be a string"}},
		{"int fraction", map[string]any{"cmd": "x", "code": 1.5}, []string{"code: must be an integer (got 1.5)"}},
		{"int range", map[string]any{"cmd": "x", "code": 256}, []string{"code: must be between 0 and 255 (got 256)"}},
		{"int below range", map[string]any{"cmd": "x", "code": -1.0}, []string{"code: must be between 0 and 255 (got -1)"}},
		{"unbounded int", map[string]any{"cmd": "x", "n": -1 << 40}, nil},
		{"bool type", map[string]any{"cmd": "x", "on": "yes"}, []string{"on: must be true or false (got yes)"}},
		{"duration number", map[string]any{"cmd": "x", "wait": 10.0}, []string{`wait: must be a duration string like "10s"`}},
		{"duration syntax", map[string]any{"cmd": "x", "wait": "ten"}, []string{`wait: invalid duration "ten"`}},
		{"negative duration", map[string]any{"cmd": "x", "wait": "-1s"}, []string{"wait: must be >= 0 (got -1s)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := testSchema.Validate(tc.config)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d: %v", errs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to start with %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	config := map[string]any{"cmd": "x", "args": []any{"a", "b"}, "code": 3.0, "on": true, "wait": "1500ms"}
	if errs := testSchema.Validate(config); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := String(config, "cmd"); got != "x" {
		t.Errorf("String = %q", got)
	}
	args := Strings(config, "args")
	if !slices.Equal(args, []string{"a", "b"}) {
		t.Errorf("Strings = %q", args)
	}
	args[0] = "changed"
	if config["args"].([]any)[0] != "a" {
		t.Error("Strings shares the config's list")
	}
	if got := Int(config, "code"); got != 3 {
		t.Errorf("Int = %d", got)
	}
	if !Bool(config, "on") {
		t.Error("Bool = false")
	}
	if got := Duration(config, "wait"); got != 1500*time.Millisecond {
		t.Errorf("Duration = %s", got)
	}
	// Absent options read as zero values.
	var none map[string]any
	if String(none, "cmd") != "" || Strings(none, "args") != nil || Int(none, "code") != 0 || Bool(none, "on") || Duration(none, "wait") != 0 {
		t.Error("absent options do not read as zero values")
	}
}

func TestRegistry(t *testing.T) {
	var r Registry
	if names := r.Names(); len(names) != 0 {
		t.Fatalf("zero registry names %v", names)
	}
	if _, known := r.CheckConfig("t", nil); known {
		t.Fatal("zero registry knows a driver")
	}
	if err := r.Register(testSchema); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(Schema{Driver: "a"}); err != nil {
		t.Fatal(err)
	}
	if names := r.Names(); !slices.Equal(names, []string{"a", "t"}) {
		t.Fatalf("names %v, want sorted [a t]", names)
	}
	errs, known := r.CheckConfig("t", map[string]any{"cmd": 1})
	if !known || len(errs) != 1 || errs[0].Field != "cmd" {
		t.Fatalf("CheckConfig: %v %v", errs, known)
	}
	if _, known := r.CheckConfig("nope", nil); known {
		t.Fatal("unknown driver reported known")
	}

	for _, tc := range []struct {
		name   string
		schema Schema
		want   string
	}{
		{"duplicate", Schema{Driver: "t"}, `driver "t" registered twice`},
		{"no name", Schema{}, "schema without a driver name"},
		{"option without name", Schema{Driver: "x", Options: []Option{{Kind: KindBool}}}, "option 0 has no name"},
		{"option twice", Schema{Driver: "x", Options: []Option{{Name: "a", Kind: KindBool}, {Name: "a", Kind: KindInt}}}, `option "a" declared twice`},
		{"no kind", Schema{Driver: "x", Options: []Option{{Name: "a"}}}, "unknown kind(0)"},
		{"bounds reversed", Schema{Driver: "x", Options: []Option{{Name: "a", Kind: KindInt, Min: 2, Max: 1}}}, "min 2 > max 1"},
		{"bounds on a string", Schema{Driver: "x", Options: []Option{{Name: "a", Kind: KindString, Max: 1}}}, "only ints take min and max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Register(tc.schema)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if names := r.Names(); !slices.Equal(names, []string{"a", "t"}) {
		t.Fatalf("refused schemas were registered: %v", names)
	}
}

// TestRegistryKeepsItsCopy: changing a schema after registering it does
// not change what the registry checks.
func TestRegistryKeepsItsCopy(t *testing.T) {
	var r Registry
	s := Schema{Driver: "x", Options: []Option{{Name: "a", Kind: KindBool}}}
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	s.Options[0].Kind = KindString
	if errs, _ := r.CheckConfig("x", map[string]any{"a": true}); len(errs) != 0 {
		t.Fatalf("registry follows the caller's schema: %v", errs)
	}
}

// TestStringMapAndCheck: maps take scalar values as strings, and an
// option's Check runs on the decoded value once its kind is right.
func TestStringMapAndCheck(t *testing.T) {
	s := Schema{Driver: "m", Options: []Option{
		{Name: "labels", Kind: KindStringMap, Check: func(v any) error {
			for k := range v.(map[string]string) {
				if strings.HasPrefix(k, "x.") {
					return fmt.Errorf("%q: the x. prefix is reserved", k)
				}
			}
			return nil
		}},
		{Name: "port", Kind: KindInt, Check: func(v any) error {
			if v.(int64)%2 != 0 {
				return fmt.Errorf("%d is odd", v)
			}
			return nil
		}},
	}}
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"json map", map[string]any{"labels": map[string]any{"a": "x", "n": 80.0, "on": true}}, nil},
		{"yaml map", map[string]any{"labels": map[string]any{"n": 80}}, nil},
		{"typed map", map[string]any{"labels": map[string]string{"a": "b"}}, nil},
		{"not a map", map[string]any{"labels": []any{"a"}}, []string{"labels: must be a map of strings"}},
		{"nested value", map[string]any{"labels": map[string]any{"a": []any{1}}}, []string{"labels.a: must be a string, number or boolean"}},
		{"check on map", map[string]any{"labels": map[string]any{"x.y": "1"}}, []string{`labels: "x.y": the x. prefix is reserved`}},
		{"check on int", map[string]any{"port": 3}, []string{"port: 3 is odd"}},
		{"check skipped on wrong kind", map[string]any{"port": "3"}, []string{"port: must be an integer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := s.Validate(tc.config)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %v", errs, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
	m := StringMap(map[string]any{"labels": map[string]any{"n": 80.0, "f": 1.5}}, "labels")
	if m["n"] != "80" || m["f"] != "1.5" {
		t.Errorf("StringMap = %v", m)
	}
	if StringMap(nil, "labels") != nil {
		t.Error("absent map is not nil")
	}
}
