package state

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestInternSharesEqualStrings(t *testing.T) {
	a := strings.Clone("task received by the node")
	b := strings.Clone("task received by the node")
	ia, ib := intern(a), intern(b)
	if ia != a || ib != b {
		t.Fatalf("intern changed a value: %q %q", ia, ib)
	}
	if unsafe.StringData(ia) != unsafe.StringData(ib) {
		t.Fatal("equal strings are not shared")
	}
	if got := intern(strings.Clone(structs.AllocClientRunning)); unsafe.StringData(got) != unsafe.StringData(structs.AllocClientRunning) {
		t.Fatal("a status is not the constant")
	}
	long := strings.Repeat("x", maxInternLen+1)
	if intern(long) != long {
		t.Fatal("long string changed")
	}
}

func TestInternTableIsBounded(t *testing.T) {
	for i := range maxInterned + 10 {
		s := fmt.Sprintf("bounded-%d", i)
		if intern(s) != s {
			t.Fatalf("value changed: %q", s)
		}
	}
	interned.Lock()
	n := len(interned.m)
	interned.Unlock()
	if n > maxInterned {
		t.Fatalf("table holds %d strings, bound %d", n, maxInterned)
	}
}
