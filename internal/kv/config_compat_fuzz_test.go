package kv

import "testing"

// FuzzCheckInert: CONFIG SET's check of the inert parameters never panics,
// and a value it accepts is accepted again as it is shown (CONFIG GET's
// value can be set back, which CONFIG SET's undo and run-units.sh rely on).
func FuzzCheckInert(f *testing.F) {
	for i, ip := range inertParams {
		f.Add(i, ip.def)
	}
	for _, s := range []string{"yes", "no", "1gb", "-2", "200%", "50%", "0 200 800", "50 99 99.9", "debug", "", " ", "9999999999999999999", "1e3"} {
		f.Add(0, s)
		f.Add(len(inertParams)-1, s)
	}
	f.Fuzz(func(t *testing.T, i int, v string) {
		if i < 0 {
			i = -i
		}
		ip := inertParams[i%len(inertParams)]
		norm, msg := checkInert(ip.name, ip.def, v)
		if msg != "" {
			return
		}
		again, msg2 := checkInert(ip.name, ip.def, norm)
		if msg2 != "" || again != norm {
			t.Fatalf("%s: %q shown as %q, which is refused (%q) or changes to %q", ip.name, v, norm, msg2, again)
		}
	})
}
