package command

import (
	"math"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Settings are the run-time parameters of the value types that CONFIG GET
// and SET reach (stream node sizes, the HyperLogLog sparse limit) and
// whether the server is in cluster mode. A server has one, in its
// Tracker, shared by every connection and by log replay; the zero value
// holds Redis's defaults.
type Settings struct {
	p       atomic.Pointer[settingValues]
	cluster atomic.Bool
	// parent, when set, holds the values instead: the trackers of the
	// other databases read database 0's (Tracker.ShareSettings)
	parent *Settings
}

type settingValues struct {
	streamNodeMaxEntries int64
	streamNodeMaxBytes   int64
	hllSparseMaxBytes    int64
	hashMaxEntries       int64
	hashMaxValue         int64
	zsetMaxEntries       int64
	zsetMaxValue         int64
	setMaxIntset         int64
}

var defaultSettings = settingValues{
	streamNodeMaxEntries: 100,
	streamNodeMaxBytes:   4096,
	hllSparseMaxBytes:    3000,
	hashMaxEntries:       int64(keyspace.DefaultHashLimits.Entries),
	hashMaxValue:         int64(keyspace.DefaultHashLimits.Value),
	zsetMaxEntries:       int64(keyspace.DefaultZSetLimits.Entries),
	zsetMaxValue:         int64(keyspace.DefaultZSetLimits.Value),
	setMaxIntset:         keyspace.DefaultIntsetEntries,
}

func (s *Settings) get() *settingValues {
	if s.parent != nil {
		return s.parent.get()
	}
	if v := s.p.Load(); v != nil {
		return v
	}
	return &defaultSettings
}

// NodeLimits returns the stream node sizes.
func (s *Settings) NodeLimits() keyspace.NodeLimits {
	v := s.get()
	return keyspace.NodeLimits{MaxEntries: v.streamNodeMaxEntries, MaxBytes: v.streamNodeMaxBytes}
}

// HashLimits returns hash-max-listpack-entries and -value: the bounds
// of a hash's small, ordered form.
func (s *Settings) HashLimits() keyspace.HashLimits {
	v := s.get()
	return keyspace.HashLimits{Entries: int(min(v.hashMaxEntries, math.MaxInt)), Value: int(min(v.hashMaxValue, math.MaxInt))}
}

// ZSetLimits returns zset-max-listpack-entries and -value: the bounds
// of a sorted set's small form.
func (s *Settings) ZSetLimits() keyspace.ZSetLimits {
	v := s.get()
	return keyspace.ZSetLimits{Entries: int(min(v.zsetMaxEntries, math.MaxInt)), Value: int(min(v.zsetMaxValue, math.MaxInt))}
}

// IntsetEntries returns set-max-intset-entries: the most members of a
// set kept as an intset.
func (s *Settings) IntsetEntries() int { return int(min(s.get().setMaxIntset, math.MaxInt32)) }

// HLLSparseMaxBytes returns hll-sparse-max-bytes.
func (s *Settings) HLLSparseMaxBytes() int { return int(s.get().hllSparseMaxBytes) }

// SetCluster records whether the server runs in cluster mode (SORT refuses
// BY and GET patterns that may reach other slots there).
func (s *Settings) SetCluster(on bool) { s.cluster.Store(on) }

// Cluster reports whether the server runs in cluster mode.
func (s *Settings) Cluster() bool {
	if s.parent != nil {
		return s.parent.Cluster()
	}
	return s.cluster.Load()
}

// settingSpec describes one parameter: its CONFIG name, range, and where
// it lives in settingValues.
type settingSpec struct {
	name     string
	min, max int64
	field    func(v *settingValues) *int64
	aliases  []string // Redis's older names
}

var settingSpecs = []settingSpec{
	{"stream-node-max-entries", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.streamNodeMaxEntries }, nil},
	{"stream-node-max-bytes", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.streamNodeMaxBytes }, nil},
	{"hll-sparse-max-bytes", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.hllSparseMaxBytes }, nil},
	{"hash-max-listpack-entries", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.hashMaxEntries }, []string{"hash-max-ziplist-entries"}},
	{"hash-max-listpack-value", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.hashMaxValue }, []string{"hash-max-ziplist-value"}},
	{"zset-max-listpack-entries", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.zsetMaxEntries }, []string{"zset-max-ziplist-entries"}},
	{"zset-max-listpack-value", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.zsetMaxValue }, []string{"zset-max-ziplist-value"}},
	{"set-max-intset-entries", 0, 1<<63 - 1, func(v *settingValues) *int64 { return &v.setMaxIntset }, nil},
}

// SettingNames lists the parameters Settings holds, with their aliases.
func SettingNames() []string {
	var names []string
	for _, sp := range settingSpecs {
		names = append(names, sp.name)
		names = append(names, sp.aliases...)
	}
	return names
}

// Params returns the parameters and their values, as CONFIG GET shows
// them.
func (s *Settings) Params() map[string]string {
	v := s.get()
	m := make(map[string]string, len(settingSpecs))
	for _, sp := range settingSpecs {
		m[sp.name] = strconv.FormatInt(*sp.field(v), 10)
		for _, a := range sp.aliases {
			m[a] = m[sp.name]
		}
	}
	return m
}

// Set changes parameter name (lower case) to val. known is false for a
// parameter that is not one of these; reason says why val is refused, as
// Redis words it, and is "" when it is not.
func (s *Settings) Set(name, val string) (known bool, reason string) {
	for _, sp := range settingSpecs {
		if sp.name != name && !slices.Contains(sp.aliases, name) {
			continue
		}
		n, ok := parseMemory(val)
		if !ok {
			return true, "argument couldn't be parsed into an integer"
		}
		if n < sp.min || n > sp.max {
			return true, "argument must be between " +
				strconv.FormatInt(sp.min, 10) + " and " + strconv.FormatInt(sp.max, 10) + " inclusive"
		}
		for {
			old := s.p.Load()
			nv := defaultSettings
			if old != nil {
				nv = *old
			}
			*sp.field(&nv) = n
			if s.p.CompareAndSwap(old, &nv) {
				return true, ""
			}
		}
	}
	return false, ""
}

// parseMemory parses an integer with an optional memory unit (k, kb, m,
// mb, g, gb), as Redis's memory settings accept.
func parseMemory(s string) (int64, bool) {
	units := []struct {
		suffix string
		mul    int64
	}{{"kb", 1024}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1000}, {"m", 1000000}, {"g", 1000000000}, {"b", 1}}
	low := string(LowerInto(nil, []byte(s)))
	mul := int64(1)
	for _, u := range units {
		if len(low) > len(u.suffix) && low[len(low)-len(u.suffix):] == u.suffix {
			low, mul = low[:len(low)-len(u.suffix)], u.mul
			break
		}
	}
	n, ok := ParseInt([]byte(low))
	if !ok || (n != 0 && (n*mul)/mul != n) {
		return 0, false
	}
	return n * mul, true
}
