package keyspace

import "testing"

// TestScanSnapshotsLRU: the table keeps the most recently used snapshots
// within its budget, does not keep one bigger than it, and serves a
// snapshot only to cursors it covers.
func TestScanSnapshotsLRU(t *testing.T) {
	var tab ScanSnapshots
	entries := func(n int) []ScanEntry {
		out := make([]ScanEntry, n)
		for i := range out {
			out[i] = ScanEntry{H: uint64(i + 1), M: "abcdefgh"} // 32 bytes
		}
		return out
	}
	tab.SetBudget(3200) // 100 entries
	if !tab.Put("a", 0, entries(40)) || !tab.Put("b", 0, entries(40)) {
		t.Fatal("Put refused a snapshot within the budget")
	}
	if tab.Get("a", 5) == nil { // a is now the most recently used
		t.Fatal("a missing")
	}
	tab.Put("c", 0, entries(40))
	if tab.Get("b", 1) != nil || tab.Get("a", 1) == nil || tab.Get("c", 1) == nil {
		t.Fatalf("after c: b evicted, a and c kept expected; %d held", tab.Len())
	}
	if b := tab.Bytes(); b != 2*40*32 {
		t.Fatalf("Bytes = %d, want %d", b, 2*40*32)
	}
	if tab.Put("d", 0, entries(101)) || tab.Get("d", 1) != nil {
		t.Fatal("a snapshot over the budget kept")
	}
	tab.Put("e", 10, entries(10))
	if tab.Get("e", 9) != nil || tab.Get("e", 10) == nil {
		t.Fatal("a snapshot from cursor 10 served to cursor 9 or not to 10")
	}
	tab.Drop("e")
	tab.Clear()
	if tab.Len() != 0 || tab.Bytes() != 0 {
		t.Fatalf("after Clear: %d, %d bytes", tab.Len(), tab.Bytes())
	}
}
