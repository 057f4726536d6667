package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// checkList checks l's invariants and that it holds model.
func checkList(t *testing.T, l *List, model [][]byte) {
	t.Helper()
	if l.Len() != len(model) {
		t.Fatalf("len %d, model %d", l.Len(), len(model))
	}
	if l.d == nil {
		checkPacked(t, l)
	} else {
		checkDeque(t, l.d)
	}
	for i, v := range model {
		if got := l.At(i); !bytes.Equal(got, v) {
			t.Fatalf("element %d: %q, model %q", i, got, v)
		}
	}
}

// checkPacked checks the invariants of a packed list.
func checkPacked(t *testing.T, l *List) {
	t.Helper()
	if l.room > l.slo || l.slo > l.shi || int(l.shi) > len(l.sd) {
		t.Fatalf("room %d slo %d shi %d len %d", l.room, l.slo, l.shi, len(l.sd))
	}
	if l.sn > listNodeMax || int(l.slive) > listPackBytes() {
		t.Fatalf("%d elements, %d bytes: over the limits", l.sn, l.slive)
	}
	if c := cap(l.sd); c > 64 && 4*int(l.shi-l.slo) < c {
		t.Fatalf("%d bytes of elements in a slice of %d", l.shi-l.slo, c)
	}
	n, live := 0, 0
	for off := int(l.slo); off < int(l.shi); n++ {
		var v []byte
		v, off = packedAt(l.sd, off)
		live += len(v)
		if off > int(l.shi) {
			t.Fatalf("element %d ends at %d, past %d", n, off, l.shi)
		}
	}
	if n != int(l.sn) || live != int(l.slive) {
		t.Fatalf("counted n %d live %d, list says %d %d", n, live, l.sn, l.slive)
	}
	for off := int(l.shi); off > int(l.slo); n-- { // and backwards
		_, off = packedBefore(l.sd, off)
	}
	if n != 0 {
		t.Fatalf("walking back found %d elements more or fewer", n)
	}
}

// checkDeque checks the invariants of a list's nodes.
func checkDeque(t *testing.T, l *deque) {
	t.Helper()
	n, live, mem := 0, 0, cap(l.nodes)*8
	for k, nd := range l.nodes {
		if k < l.nlo {
			if nd != nil {
				t.Fatalf("node slot %d before nlo %d not cleared", k, l.nlo)
			}
			continue
		}
		if nd.count() == 0 {
			t.Fatalf("node %d empty", k)
		}
		if nd.count() > listNodeMax || nd.count() > 1 && nd.bytes() > listNodeBytes {
			t.Fatalf("node %d: %d elements, %d bytes: over the limits", k, nd.count(), nd.bytes())
		}
		if cap(nd.items) > 4*listNodeMax {
			t.Fatalf("node %d: items capacity %d", k, cap(nd.items))
		}
		if nd.count() > 1 && cap(nd.data) > 8*listNodeBytes {
			t.Fatalf("node %d: data capacity %d for %d bytes", k, cap(nd.data), nd.bytes())
		}
		b := 0
		for j := 0; j < nd.count(); j++ {
			b += len(nd.at(j))
		}
		if b != nd.bytes() {
			t.Fatalf("node %d: items refer to %d bytes, data %d - garbage %d", k, b, len(nd.data), nd.garbage)
		}
		n += nd.count()
		live += b
		mem += nd.footprint()
	}
	if n != l.n || live != l.live || mem != l.mem {
		t.Fatalf("counted n %d live %d mem %d, list says %d %d %d", n, live, mem, l.n, l.live, l.mem)
	}
}

type heldValue struct{ got, want []byte }

// TestListModel runs random operations on a List and on a [][]byte and
// compares them, with the nodes' limits low so that nodes fill, split,
// merge and compact often; values handed out must stay unchanged.
func TestListModel(t *testing.T) {
	for _, nodeBytes := range []int{64, 1 << 10, 8 << 10} {
		t.Run(fmt.Sprintf("node-%d", nodeBytes), func(t *testing.T) {
			defer func(b int) { listNodeBytes = b }(listNodeBytes)
			listNodeBytes = nodeBytes
			for seed := uint64(1); seed <= 4; seed++ {
				runListModel(t, seed, 3000)
			}
			for seed := uint64(100); seed < 400; seed++ { // new lists
				runListModel(t, seed, 20)
			}
		})
	}
}

func runListModel(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, 7))
	l := &List{}
	var model [][]byte
	grew := false // the model was once over a packed list's limits
	var held []heldValue
	hold := func(v []byte) {
		if len(held) < 2000 {
			held = append(held, heldValue{v, slices.Clone(v)})
		}
	}
	pool := [][]byte{[]byte("a"), []byte("bb"), []byte(""), []byte("pivot")}
	val := func() []byte {
		if r.IntN(3) == 0 {
			return slices.Clone(pool[r.IntN(len(pool))])
		}
		size := r.IntN(24)
		if r.IntN(20) == 0 { // around the packed form's two-byte lengths
			size = 120 + r.IntN(16)
		}
		if r.IntN(50) == 0 || steps < 100 && r.IntN(4) == 0 {
			size = r.IntN(3 * listNodeBytes) // sometimes bigger than a node
		}
		v := make([]byte, size)
		for i := range v {
			v[i] = byte('a' + r.IntN(26))
		}
		return v
	}
	// the list must not keep the caller's slice: scribble over it
	scribble := func(v []byte) {
		for i := range v {
			v[i] = '#'
		}
	}
	for step := 0; step < steps; step++ {
		op := r.IntN(20)
		if len(model) > 600 && op < 8 { // keep it from growing without bound
			op = 8 + r.IntN(4)
		}
		switch {
		case op < 4:
			v := val()
			l.PushBack(v)
			model = append(model, slices.Clone(v))
			scribble(v)
		case op < 8:
			v := val()
			l.PushFront(v)
			model = slices.Insert(model, 0, slices.Clone(v))
			scribble(v)
		case op < 10 && len(model) > 0:
			v := l.PopFront()
			if !bytes.Equal(v, model[0]) {
				t.Fatalf("seed %d step %d: PopFront %q, model %q", seed, step, v, model[0])
			}
			model = model[1:]
			hold(v)
		case op < 12 && len(model) > 0:
			v := l.PopBack()
			if !bytes.Equal(v, model[len(model)-1]) {
				t.Fatalf("seed %d step %d: PopBack %q, model %q", seed, step, v, model[len(model)-1])
			}
			model = model[:len(model)-1]
			hold(v)
		case op < 13 && len(model) > 0:
			i := r.IntN(len(model))
			v := val()
			l.Set(i, v)
			model[i] = slices.Clone(v)
			scribble(v)
		case op < 14:
			i := r.IntN(len(model) + 1)
			v := val()
			l.InsertAt(i, v)
			model = slices.Insert(model, i, slices.Clone(v))
			scribble(v)
		case op < 15 && len(model) > 0:
			v := slices.Clone(pool[r.IntN(len(pool))])
			count := r.IntN(5) - 2
			want := removeModel(&model, v, count)
			if got := l.Remove(v, count); got != want {
				t.Fatalf("seed %d step %d: Remove(%q, %d) = %d, model %d", seed, step, v, count, got, want)
			}
		case op < 16 && len(model) > 0:
			start := r.IntN(len(model))
			stop := start + r.IntN(len(model)-start)
			if r.IntN(2) == 0 { // mostly small trims, as a capped list
				start, stop = r.IntN(3), len(model)-1-r.IntN(3)
				if start > stop || stop < 0 {
					start, stop = 0, len(model)-1
				}
			}
			l.Trim(start, stop)
			model = model[start : stop+1]
		case op < 17 && len(model) > 0: // LRANGE
			i := r.IntN(len(model))
			j := min(len(model)-1, i+r.IntN(130))
			k := i
			l.Range(i, j, func(v []byte) {
				if !bytes.Equal(v, model[k]) {
					t.Fatalf("seed %d step %d: Range(%d, %d) element %d %q, model %q", seed, step, i, j, k, v, model[k])
				}
				hold(v)
				k++
			})
			if k != j+1 {
				t.Fatalf("seed %d step %d: Range(%d, %d) gave %d elements", seed, step, i, j, k-i)
			}
		case op < 18 && len(model) > 0: // LINDEX
			i := r.IntN(len(model))
			for j := i; j < min(len(model), i+r.IntN(50)); j++ {
				v := l.At(j)
				if !bytes.Equal(v, model[j]) {
					t.Fatalf("seed %d step %d: At(%d) %q, model %q", seed, step, j, v, model[j])
				}
				hold(v)
			}
		default:
			if len(model) > 0 {
				i := r.IntN(len(model))
				if v := l.At(i); !bytes.Equal(v, model[i]) {
					t.Fatalf("seed %d step %d: At(%d) %q, model %q", seed, step, i, v, model[i])
				}
			}
		}
		grew = grew || len(model) > listNodeMax || modelBytes(model) > listPackBytes()
		if !grew {
			checkSmallMemory(t, l, model)
		}
		if step%97 == 0 || step == steps-1 {
			checkList(t, l, model)
		}
		for _, h := range held {
			if !bytes.Equal(h.got, h.want) {
				t.Fatalf("seed %d step %d: a value handed out changed to %q, was %q", seed, step, h.got, h.want)
			}
		}
		if len(held) == 2000 {
			held = held[:0]
		}
	}
}

func modelBytes(model [][]byte) int {
	n := 0
	for _, v := range model {
		n += len(v)
	}
	return n
}

// checkSmallMemory checks that a list that never had more than
// listNodeMax elements or listPackBytes bytes of them takes its header
// and at most four times its packed elements (64 bytes at least).
func checkSmallMemory(t *testing.T, l *List, model [][]byte) {
	t.Helper()
	packed := 0
	for _, v := range model {
		packed += len(v) + 2
		if len(v) >= 128 {
			packed += 2
		}
	}
	if m, want := l.Memory(), int64(48+max(64, 4*packed)); m > want {
		t.Fatalf("%d elements, %d bytes packed: memory %d, want at most %d", len(model), packed, m, want)
	}
}

// removeModel is LREM on the model.
func removeModel(model *[][]byte, v []byte, count int) int {
	s := *model
	removed := 0
	keep := make([]bool, len(s))
	for k := range s {
		i := k
		if count < 0 {
			i = len(s) - 1 - k
		}
		if bytes.Equal(s[i], v) && (count == 0 || removed < max(count, -count)) {
			removed++
			continue
		}
		keep[i] = true
	}
	var out [][]byte
	for i, x := range s {
		if keep[i] {
			out = append(out, x)
		}
	}
	*model = out
	return removed
}

// TestListQueueBounded: a queue (push at one end, pop at the other)
// holding few elements keeps its memory bounded however many pass
// through it.
func TestListQueueBounded(t *testing.T) {
	for _, front := range []bool{false, true} {
		l := &List{}
		v := []byte("value-of-some-bytes")
		peak := int64(0)
		for i := 0; i < 200000; i++ {
			if front {
				l.PushFront(v)
			} else {
				l.PushBack(v)
			}
			if l.Len() > 50 {
				if front {
					l.PopBack()
				} else {
					l.PopFront()
				}
			}
			if i == 1000 {
				peak = l.Memory()
			}
			if i > 1000 && l.Memory() > 2*peak+4096 {
				t.Fatalf("front %v: after %d pushes %d bytes, %d after 1,000", front, i, l.Memory(), peak)
			}
		}
		if l.d != nil && cap(l.d.nodes) > 16 {
			t.Fatalf("front %v: %d node slots for %d nodes", front, cap(l.d.nodes), l.Nodes())
		}
	}
}

// TestListPacked: a list's elements are packed in few nodes (no
// allocation per element) and its memory estimate follows them.
func TestListPacked(t *testing.T) {
	l := &List{}
	v := []byte("value-of-some-bytes!") // 20 bytes
	for i := 0; i < 100000; i++ {
		l.PushBack(v)
	}
	if got, want := l.Nodes(), 100000/listNodeMax+1; got > want {
		t.Fatalf("100,000 elements in %d nodes, want at most %d", got, want)
	}
	if m := l.Memory(); m > 100000*36 {
		t.Fatalf("100,000 elements of 20 bytes: %d bytes, want under 36 an element", m)
	}
	l.PushFront(v) // the first node is full: start a new one, as LPUSH would
	allocs := testing.AllocsPerRun(1000, func() {
		l.PushBack(v)
		l.PushFront(v)
		l.PopBack()
		l.PopFront()
	})
	if allocs > 0.1 {
		t.Fatalf("%.2f allocations per push and pop", allocs)
	}
}

// TestListTrimFreesBytes: elements trimmed off a node do not keep its
// bytes (LTRIM of a big node down to one element).
func TestListTrimFreesBytes(t *testing.T) {
	l := &List{}
	v := bytes.Repeat([]byte("v"), 60)
	for i := 0; i < listNodeMax; i++ {
		l.PushBack(v)
	}
	full := l.Memory()
	l.Trim(5, 5)
	if m := l.Memory(); m > full/4 {
		t.Fatalf("one element of 60 bytes left: %d bytes (%d before)", m, full)
	}
	if !bytes.Equal(l.At(0), v) {
		t.Fatalf("left %q", l.At(0))
	}
}

// TestListFirstElementBig: a new list's first element bigger than a node
// (the list's own first node must not stay behind empty).
func TestListFirstElementBig(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 2*listNodeBytes)
	for _, front := range []bool{false, true} {
		l := &List{}
		if front {
			l.PushFront(big)
		} else {
			l.PushBack(big)
		}
		l.PushBack([]byte("x"))
		checkList(t, l, [][]byte{big, []byte("x")})
	}
}

// TestListSmallMemory: a small list is its 48-byte header and its
// elements packed in one slice (Redis's listpack), as RPUSH makes it.
func TestListSmallMemory(t *testing.T) {
	for _, tt := range []struct {
		elems []string
		want  int64
	}{
		{[]string{"a", "b", "c"}, 48 + 16},                                       // 9 bytes packed
		{[]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, 48 + 32},   // 31
		{[]string{strings.Repeat("x", 127), strings.Repeat("y", 128)}, 48 + 288}, // 129 + 132
	} {
		for _, front := range []bool{false, true} {
			l := &List{}
			var model [][]byte
			for _, v := range tt.elems {
				if front {
					l.PushFront([]byte(v))
					model = slices.Insert(model, 0, []byte(v))
				} else {
					l.PushBack([]byte(v))
					model = append(model, []byte(v))
				}
			}
			checkList(t, l, model)
			if m := l.Memory(); m > tt.want {
				t.Errorf("front %v %q: memory %d, want at most %d", front, tt.elems[0], m, tt.want)
			}
		}
	}
}

// TestListPackedLimits: a packed list moves to nodes at its 129th element
// or past 8 KB of elements, and not before.
func TestListPackedLimits(t *testing.T) {
	l := &List{}
	for i := 0; i < listNodeMax; i++ {
		l.PushFront([]byte("v"))
	}
	if l.d != nil {
		t.Fatalf("%d elements: moved to nodes", l.Len())
	}
	l.InsertAt(64, []byte("w"))
	if l.d == nil || l.Len() != listNodeMax+1 || string(l.At(64)) != "w" {
		t.Fatalf("129 elements: packed %v, len %d", l.d == nil, l.Len())
	}
	l = &List{}
	l.PushBack(make([]byte, 8<<10-1))
	l.PushBack([]byte("x"))
	if l.d != nil {
		t.Fatal("8 KB of elements: moved to nodes")
	}
	l.Set(1, []byte("xy"))
	if l.d == nil || string(l.At(1)) != "xy" {
		t.Fatal("8 KB + 1 of elements: still packed")
	}
	l = &List{}
	l.PushFront(make([]byte, 8<<10+1))
	if l.d == nil || len(l.At(0)) != 8<<10+1 {
		t.Fatal("an element over 8 KB: packed")
	}
}

// TestListPackedPushAfterPop: a push after a pop at the same end does not
// write over the popped element, which its holder still reads.
func TestListPackedPushAfterPop(t *testing.T) {
	l := &List{}
	for _, v := range []string{"a", "b", "c"} {
		l.PushBack([]byte(v))
	}
	back, front := l.PopBack(), l.PopFront()
	l.PushBack([]byte("x"))
	l.PushFront([]byte("y"))
	if string(back) != "c" || string(front) != "a" {
		t.Fatalf("popped values changed to %q %q", front, back)
	}
	model := [][]byte{[]byte("y"), []byte("b"), []byte("x")}
	checkList(t, l, model)
	checkSmallMemory(t, l, model)
}

// FuzzList runs the operations the input spells on a List and on a
// [][]byte, with low node limits, and compares them.
func FuzzList(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x03\x03\x01\x02"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > 4096 {
			return
		}
		defer func(b int) { listNodeBytes = b }(listNodeBytes)
		listNodeBytes = 200
		l := &List{}
		var model [][]byte
		var held []heldValue
		grew := false
		for i := 0; i+1 < len(p); i += 2 {
			op, arg := p[i]%10, int(p[i+1])
			v := bytes.Repeat([]byte{'a' + byte(arg%3)}, arg%7*(1+arg/224*40)) // 0 to 6 bytes, or up to 240
			switch {
			case op == 0:
				l.PushBack(v)
				model = append(model, slices.Clone(v))
			case op == 1:
				l.PushFront(v)
				model = slices.Insert(model, 0, slices.Clone(v))
			case op == 2 && len(model) > 0:
				held = append(held, heldValue{l.PopFront(), model[0]})
				model = model[1:]
			case op == 3 && len(model) > 0:
				held = append(held, heldValue{l.PopBack(), model[len(model)-1]})
				model = model[:len(model)-1]
			case op == 4 && len(model) > 0:
				l.Set(arg%len(model), v)
				model[arg%len(model)] = slices.Clone(v)
			case op == 5:
				j := arg % (len(model) + 1)
				l.InsertAt(j, v)
				model = slices.Insert(model, j, slices.Clone(v))
			case op == 6 && len(model) > 0:
				count := arg%5 - 2
				if got, want := l.Remove(v, count), removeModel(&model, v, count); got != want {
					t.Fatalf("Remove %d, model %d", got, want)
				}
			case op == 7 && len(model) > 0:
				start := arg % len(model)
				stop := start + arg/7%(len(model)-start)
				l.Trim(start, stop)
				model = model[start : stop+1]
			case op == 8 && len(model) > 0:
				held = append(held, heldValue{l.At(arg % len(model)), model[arg%len(model)]})
			case op == 9: // a pass to the end (the cursor), and Range
				for j := range model {
					if !bytes.Equal(l.At(j), model[j]) {
						t.Fatalf("At(%d) %q, model %q", j, l.At(j), model[j])
					}
				}
				if len(model) > 0 {
					j := arg % len(model)
					l.Range(j, len(model)-1, func(v []byte) {
						if !bytes.Equal(v, model[j]) {
							t.Fatalf("Range: element %d %q, model %q", j, v, model[j])
						}
						j++
					})
				}
			}
			checkList(t, l, model)
			if grew = grew || len(model) > listNodeMax || modelBytes(model) > listPackBytes(); !grew {
				checkSmallMemory(t, l, model)
			}
			for _, h := range held {
				if !bytes.Equal(h.got, h.want) {
					t.Fatalf("a value handed out changed to %q, was %q", h.got, h.want)
				}
			}
		}
	})
}

// BenchmarkListBig: LPUSH and RPOP on one big list (redis-benchmark's
// lpush and rpop).
func BenchmarkListBig(b *testing.B) {
	l := &List{}
	v := []byte("xxx")
	for i := 0; i < 100000; i++ {
		l.PushFront(v)
	}
	b.Run("push-front", func(b *testing.B) {
		for b.Loop() {
			l.PushFront(v)
		}
	})
	b.Run("pop-back", func(b *testing.B) {
		for b.Loop() {
			if l.Len() == 0 {
				l.PushFront(v)
			}
			l.PopBack()
		}
	})
}
