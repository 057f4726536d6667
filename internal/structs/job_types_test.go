package structs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func kindJob(mut func(j *Job)) *Job {
	j := &Job{Name: "j", Count: 0, Driver: "mock", Resources: Resources{CPU: 1, MemoryMB: 1}}
	mut(j)
	j.Canonicalize()
	return j
}

// TestValidateJobKinds: the rules of job types, periodic, parameterized
// and meta, each refused with the field named.
func TestValidateJobKinds(t *testing.T) {
	long := strings.Repeat("a", MaxParentNameLen+1)
	cases := []struct {
		name  string
		mut   func(j *Job)
		field string // "" = valid
	}{
		{"system", func(j *Job) { j.Type = JobTypeSystem }, ""},
		{"system count 1", func(j *Job) { j.Type, j.Count = JobTypeSystem, 1 }, ""},
		{"system count 3", func(j *Job) { j.Type, j.Count = JobTypeSystem, 3 }, "count"},
		{"sysbatch gang", func(j *Job) { j.Type, j.Gang = JobTypeSysBatch, true }, "gang"},
		{"unknown type", func(j *Job) { j.Type = "daemon" }, "type"},
		{"periodic batch", func(j *Job) {
			j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "*/5 * * * *", TimeZone: "Europe/Paris"}
		}, ""},
		{"periodic descriptor", func(j *Job) { j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "@every 90s"} }, ""},
		{"periodic service", func(j *Job) { j.Periodic = &PeriodicConfig{Cron: "* * * * *"} }, "periodic"},
		{"periodic no cron", func(j *Job) { j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{} }, "periodic.cron"},
		{"periodic bad cron", func(j *Job) { j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "61 * * * *"} }, "periodic.cron"},
		{"periodic seconds field", func(j *Job) { j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "0 * * * * *"} }, "periodic.cron"},
		{"periodic tz in cron", func(j *Job) {
			j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "CRON_TZ=UTC * * * * *"}
		}, "periodic.cron"},
		{"periodic bad zone", func(j *Job) {
			j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "* * * * *", TimeZone: "Mars/Olympus"}
		}, "periodic.time_zone"},
		{"periodic path zone", func(j *Job) {
			j.Type, j.Periodic = JobTypeBatch, &PeriodicConfig{Cron: "* * * * *", TimeZone: "../../etc/passwd"}
		}, "periodic.time_zone"},
		{"periodic long name", func(j *Job) {
			j.Name, j.Type, j.Periodic = long, JobTypeBatch, &PeriodicConfig{Cron: "* * * * *"}
		}, "name"},
		{"both blocks", func(j *Job) {
			j.Type = JobTypeBatch
			j.Periodic, j.Parameterized = &PeriodicConfig{Cron: "* * * * *"}, &ParameterizedConfig{Payload: "optional"}
		}, "periodic"},
		{"parameterized", func(j *Job) {
			j.Type, j.Parameterized = JobTypeSysBatch, &ParameterizedConfig{Payload: "required", MetaRequired: []string{"a"}}
		}, ""},
		{"parameterized bad payload", func(j *Job) {
			j.Type, j.Parameterized = JobTypeBatch, &ParameterizedConfig{Payload: "sometimes"}
		}, "parameterized.payload"},
		{"parameterized duplicate key", func(j *Job) {
			j.Type, j.Parameterized = JobTypeBatch, &ParameterizedConfig{MetaRequired: []string{"a"}, MetaOptional: []string{"a"}}
		}, "parameterized"},
		{"parameterized service", func(j *Job) { j.Parameterized = &ParameterizedConfig{} }, "parameterized"},
		{"meta ok", func(j *Job) { j.Meta = map[string]string{"team": "web", "cost.center": "7"} }, ""},
		{"meta bad key", func(j *Job) { j.Meta = map[string]string{"a=b": "x"} }, "meta"},
		{"meta long value", func(j *Job) { j.Meta = map[string]string{"a": strings.Repeat("x", MaxMetaValueLen+1)} }, "meta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := kindJob(tc.mut).Validate(nil)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want an error on %s, got %v", tc.field, err)
			}
			for _, fe := range ve.Errors {
				if fe.Field == tc.field {
					return
				}
			}
			t.Fatalf("want an error on %s, got %v", tc.field, err)
		})
	}
}

// TestPeriodicNextInZone: cron times are read in the job's zone, across a
// daylight saving change.
func TestPeriodicNextInZone(t *testing.T) {
	p := &PeriodicConfig{Cron: "30 2 * * *", TimeZone: "Europe/Paris"}
	// 2026-03-29: clocks go from 02:00 to 03:00 in Paris; 02:30 does not
	// exist that day (robfig/cron skips it), the next is the 30th.
	got, err := p.Next(time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next %v, want %v", got.UTC(), want)
	}
	utc := &PeriodicConfig{Cron: "0 9 * * 1"} // Mondays 09:00 UTC
	got, _ = utc.Next(time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next %v, want %v", got, want)
	}
	never := &PeriodicConfig{Cron: "0 0 30 2 *"}
	if got, err := never.Next(time.Now()); err != nil || !got.IsZero() {
		t.Fatalf("Feb 30: %v %v, want the zero time", got, err)
	}
}

func TestPeriodicChildNames(t *testing.T) {
	at := time.Unix(1780000000, 0)
	name := PeriodicChildName("report", at)
	if name != "report.periodic-1780000000" {
		t.Fatalf("name %q", name)
	}
	if got, ok := PeriodicLaunchTime("report", name); !ok || !got.Equal(at) {
		t.Fatalf("launch time %v %v", got, ok)
	}
	for _, bad := range []string{"report", "report.periodic-", "report.periodic-x", "reports.periodic-1", "report.dispatch-1"} {
		if _, ok := PeriodicLaunchTime("report", bad); ok {
			t.Fatalf("%q read as a launch of report", bad)
		}
	}
}

// TestCheckDispatch: payload rule and size, required and allowed keys.
func TestCheckDispatch(t *testing.T) {
	j := kindJob(func(j *Job) {
		j.Type = JobTypeBatch
		j.Parameterized = &ParameterizedConfig{Payload: DispatchPayloadRequired, MetaRequired: []string{"size"}, MetaOptional: []string{"fmt"}}
	})
	forbid := kindJob(func(j *Job) {
		j.Type = JobTypeBatch
		j.Parameterized = &ParameterizedConfig{Payload: DispatchPayloadForbidden}
	})
	ok := map[string]string{"size": "s"}
	cases := []struct {
		name    string
		job     *Job
		payload []byte
		meta    map[string]string
		want    string // substring of the error; "" = accepted
	}{
		{"ok", j, []byte("x"), ok, ""},
		{"ok with optional", j, []byte("x"), map[string]string{"size": "s", "fmt": "png"}, ""},
		{"payload required", j, nil, ok, "payload: is required"},
		{"payload too large", j, make([]byte, MaxDispatchPayload+1), ok, "payload: at most"},
		{"payload at the limit", j, make([]byte, MaxDispatchPayload), ok, ""},
		{"payload forbidden", forbid, []byte("x"), nil, "payload: is forbidden"},
		{"required key missing", j, []byte("x"), nil, `key "size" is required`},
		{"key not allowed", j, []byte("x"), map[string]string{"size": "s", "x": "1"}, `key "x" is not allowed`},
		{"bad key", j, []byte("x"), map[string]string{"size": "s", "": "1"}, `key ""`},
		{"not parameterized", kindJob(func(*Job) {}), nil, nil, "not parameterized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.job.CheckDispatch(tc.payload, tc.meta)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want accepted, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
	c := j.Child(DispatchChildName(j.Name, "00ff"), []byte("p"), ok)
	if c.ID != "j.dispatch-00ff" || c.ParentID != "j" || c.Parameterized != nil || c.Meta["size"] != "s" || string(c.Payload) != "p" {
		t.Fatalf("child %+v", c)
	}
	if j.Meta != nil {
		t.Fatal("Child changed the parent's meta")
	}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("child invalid: %v", err)
	}
}

// TestSpecChangedPerNode: turning a job into a per-node job (or back)
// replaces its copies; metadata does not.
func TestSpecChangedPerNode(t *testing.T) {
	a := kindJob(func(*Job) {})
	b := a.Copy()
	b.Type = JobTypeSystem
	if !SpecChanged(a, b) {
		t.Fatal("service -> system is not a spec change")
	}
	c := a.Copy()
	c.Meta = map[string]string{"k": "v"}
	c.Periodic = &PeriodicConfig{Cron: "* * * * *"}
	if SpecChanged(a, c) {
		t.Fatal("meta and periodic changes are spec changes")
	}
	if d := c.Copy(); d.Periodic == c.Periodic || d.Meta["k"] != "v" {
		t.Fatal("Copy shares the periodic block")
	}
}

// FuzzPeriodicSchedule: any expression and zone give a clear error or a
// schedule whose next time is after the given one (or never), without a
// panic.
func FuzzPeriodicSchedule(f *testing.F) {
	for _, s := range [][2]string{
		{"*/5 * * * *", ""}, {"0 9 * * MON-FRI", "America/New_York"}, {"@hourly", "UTC"}, {"@every 1m30s", ""},
		{"0 0 30 2 *", ""}, {"61 * * * *", ""}, {"CRON_TZ=Europe/Paris 0 * * * *", ""}, {"* * * * * *", ""},
		{"", ""}, {"@every -1s", ""}, {"1-0 * * * *", ""}, {"*/0 * * * *", ""}, {"0 0 * * *", "Local"},
		{"0 0 * * *", "../etc"}, {"? ? ? ? ?", ""}, {"0 0 L * *", ""},
	} {
		f.Add(s[0], s[1], int64(1780000000))
	}
	f.Fuzz(func(t *testing.T, expr, zone string, at int64) {
		p := &PeriodicConfig{Cron: expr, TimeZone: zone}
		start := time.Unix(at%(1<<40), 0)
		next, err := p.Next(start)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !next.IsZero() && !next.After(start) {
			t.Fatalf("%q in %q: next %v is not after %v", expr, zone, next, start)
		}
	})
}

// FuzzCheckDispatch: any metadata and payload size are accepted or refused
// with a message, never a panic, and an accepted dispatch makes a valid
// child.
func FuzzCheckDispatch(f *testing.F) {
	f.Add("size", "s", "fmt", "png", 10, "optional")
	f.Add("", "", "a=b", "x", 0, "required")
	f.Add("size", strings.Repeat("v", 2000), "x", "\x00", MaxDispatchPayload+1, "forbidden")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, size int, mode string) {
		j := kindJob(func(j *Job) {
			j.Type = JobTypeBatch
			j.Parameterized = &ParameterizedConfig{Payload: mode, MetaRequired: []string{"size"}, MetaOptional: []string{"fmt"}}
		})
		if size < 0 || size > 2*MaxDispatchPayload {
			size = 0
		}
		meta := map[string]string{k1: v1, k2: v2}
		err := j.CheckDispatch(make([]byte, size), meta)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		c := j.Child(DispatchChildName(j.Name, "0123456789abcdef"), make([]byte, size), meta)
		if err := c.Validate(nil); err != nil && j.Validate(nil) == nil {
			t.Fatalf("accepted dispatch made an invalid child: %v", err)
		}
	})
}
