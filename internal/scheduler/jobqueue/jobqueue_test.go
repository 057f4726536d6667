package jobqueue

import (
	"slices"
	"testing"
)

func TestOrder(t *testing.T) {
	q := New(nil)
	q.Add("a", 1)
	q.Add("b", 5)
	q.Add("c", 5)
	if q.Add("a", 9) { // raised priority keeps its first-enqueue sequence
		t.Fatal("re-adding a queued job reported a new entry")
	}
	q.Add("d", 9)
	if !q.Has("c") || q.Has("z") || q.Len() != 4 {
		t.Fatalf("Has/Len wrong: len %d", q.Len())
	}
	var got []string
	for it, ok := q.Pop(); ok; it, ok = q.Pop() {
		got = append(got, it.JobID)
	}
	if want := []string{"a", "d", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestSharedSequence(t *testing.T) {
	var seq uint64
	q1, q2 := New(&seq), New(&seq)
	q1.Add("x", 1)
	q2.Add("y", 1)
	q1.Add("z", 1)
	a, _ := q1.Pop()
	b, _ := q1.Pop()
	if a.JobID != "x" || b.JobID != "z" || a.seq >= b.seq {
		t.Fatalf("shared counter not used: %+v %+v", a, b)
	}
}
