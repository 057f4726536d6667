package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// applyConfigFile sets the flags named in a YAML file (flag name: value;
// lists for slice flags) unless they were given on the command line, so a
// config file and flags mean the same thing. Unknown keys are errors.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || k == "config" {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		if f.Changed {
			continue
		}
		var val string
		switch v := m[k].(type) {
		case []any:
			parts := make([]string, len(v))
			for i, x := range v {
				parts[i] = fmt.Sprint(x)
			}
			val = strings.Join(parts, ",")
		case nil:
			return fmt.Errorf("config file %s: %s has no value", path, k)
		default:
			val = fmt.Sprint(v)
		}
		if err := fs.Set(k, val); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
	}
	return nil
}

// rewriteConfigFile is CONFIG REWRITE for a peer started with --config:
// every flag that is also a CONFIG parameter (get answers it) is written
// with its current value when the file names it or the value differs
// from the flag's default; the file's other keys stay. yes/no become
// true/false for boolean flags. The file is replaced atomically; its
// comments and key order are not kept (YAML written anew, keys sorted).
func rewriteConfigFile(fs *pflag.FlagSet, path string, get func(string) (string, bool)) error {
	m := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		if m == nil {
			m = map[string]any{}
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("config file: %w", err)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" {
			return
		}
		v, ok := get(f.Name)
		if !ok {
			return
		}
		if f.Value.Type() == "bool" {
			switch v {
			case "yes":
				v = "true"
			case "no":
				v = "false"
			}
		}
		_, inFile := m[f.Name]
		if !inFile && v == f.DefValue {
			return
		}
		m[f.Name] = v
	})
	out, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(out); err != nil {
		fh.Close()
		os.Remove(tmp)
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		os.Remove(tmp)
		return err
	}
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
