package keyspace

// List is the value of a list key: a ring buffer, O(1) at both ends.
type List struct {
	buf   [][]byte
	head  int
	n     int
	bytes int // of the elements (Memory)
}

func (l *List) Len() int { return l.n }

func (l *List) idx(i int) int {
	j := l.head + i
	if j >= len(l.buf) {
		j -= len(l.buf)
	}
	return j
}

// At returns element i, 0 <= i < len.
func (l *List) At(i int) []byte { return l.buf[l.idx(i)] }

func (l *List) Set(i int, v []byte) {
	j := l.idx(i)
	l.bytes += len(v) - len(l.buf[j])
	l.buf[j] = v
}

func (l *List) grow() {
	if l.n < len(l.buf) {
		return
	}
	size := 2 * len(l.buf)
	if size < 4 {
		size = 4
	}
	nb := make([][]byte, size)
	for i := 0; i < l.n; i++ {
		nb[i] = l.At(i)
	}
	l.buf, l.head = nb, 0
}

func (l *List) PushBack(v []byte) {
	l.grow()
	l.buf[l.idx(l.n)] = v
	l.n++
	l.bytes += len(v)
}

func (l *List) PushFront(v []byte) {
	l.grow()
	l.head--
	if l.head < 0 {
		l.head += len(l.buf)
	}
	l.buf[l.head] = v
	l.n++
	l.bytes += len(v)
}

func (l *List) PopFront() []byte {
	v := l.buf[l.head]
	l.buf[l.head] = nil
	l.head = l.idx(1)
	l.n--
	l.bytes -= len(v)
	l.shrink()
	return v
}

func (l *List) PopBack() []byte {
	j := l.idx(l.n - 1)
	v := l.buf[j]
	l.buf[j] = nil
	l.n--
	l.bytes -= len(v)
	l.shrink()
	return v
}

func (l *List) shrink() {
	if len(l.buf) > 64 && l.n < len(l.buf)/4 {
		nb := make([][]byte, len(l.buf)/2)
		for i := 0; i < l.n; i++ {
			nb[i] = l.At(i)
		}
		l.buf, l.head = nb, 0
	}
}

// Slice returns the elements as one contiguous slice (it linearizes the
// buffer); the list may be modified through it until the next push or pop.
func (l *List) Slice() [][]byte {
	if l.head+l.n > len(l.buf) {
		nb := make([][]byte, len(l.buf))
		for i := 0; i < l.n; i++ {
			nb[i] = l.At(i)
		}
		l.buf, l.head = nb, 0
	}
	return l.buf[l.head : l.head+l.n]
}

// Replace sets the elements to s (which the list takes over).
func (l *List) Replace(s [][]byte) {
	l.buf, l.head, l.n = s, 0, len(s)
	l.bytes = 0
	for _, v := range s {
		l.bytes += len(v)
	}
	l.shrink()
}

// InsertAt inserts v before position i (0 <= i <= len).
func (l *List) InsertAt(i int, v []byte) {
	s := l.Slice()
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = v
	l.Replace(s)
}
