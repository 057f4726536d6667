package kv

// list is the value of a list key: a ring buffer, O(1) at both ends.
type list struct {
	buf  [][]byte
	head int
	n    int
}

func (l *list) len() int { return l.n }

func (l *list) idx(i int) int {
	j := l.head + i
	if j >= len(l.buf) {
		j -= len(l.buf)
	}
	return j
}

// at returns element i, 0 <= i < len.
func (l *list) at(i int) []byte { return l.buf[l.idx(i)] }

func (l *list) set(i int, v []byte) { l.buf[l.idx(i)] = v }

func (l *list) grow() {
	if l.n < len(l.buf) {
		return
	}
	size := 2 * len(l.buf)
	if size < 4 {
		size = 4
	}
	nb := make([][]byte, size)
	for i := 0; i < l.n; i++ {
		nb[i] = l.at(i)
	}
	l.buf, l.head = nb, 0
}

func (l *list) pushBack(v []byte) {
	l.grow()
	l.buf[l.idx(l.n)] = v
	l.n++
}

func (l *list) pushFront(v []byte) {
	l.grow()
	l.head--
	if l.head < 0 {
		l.head += len(l.buf)
	}
	l.buf[l.head] = v
	l.n++
}

func (l *list) popFront() []byte {
	v := l.buf[l.head]
	l.buf[l.head] = nil
	l.head = l.idx(1)
	l.n--
	l.shrink()
	return v
}

func (l *list) popBack() []byte {
	j := l.idx(l.n - 1)
	v := l.buf[j]
	l.buf[j] = nil
	l.n--
	l.shrink()
	return v
}

func (l *list) shrink() {
	if len(l.buf) > 64 && l.n < len(l.buf)/4 {
		nb := make([][]byte, len(l.buf)/2)
		for i := 0; i < l.n; i++ {
			nb[i] = l.at(i)
		}
		l.buf, l.head = nb, 0
	}
}

// slice returns the elements as one contiguous slice (it linearizes the
// buffer); the list may be modified through it until the next push or pop.
func (l *list) slice() [][]byte {
	if l.head+l.n > len(l.buf) {
		nb := make([][]byte, len(l.buf))
		for i := 0; i < l.n; i++ {
			nb[i] = l.at(i)
		}
		l.buf, l.head = nb, 0
	}
	return l.buf[l.head : l.head+l.n]
}

// replace sets the elements to s (which the list takes over).
func (l *list) replace(s [][]byte) {
	l.buf, l.head, l.n = s, 0, len(s)
	l.shrink()
}

// insertAt inserts v before position i (0 <= i <= len).
func (l *list) insertAt(i int, v []byte) {
	s := l.slice()
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = v
	l.replace(s)
}

// normIndex converts a Redis index (negative from the end) into a position,
// reporting whether it is inside the list.
func normIndex(i int64, n int) (int, bool) {
	if i < 0 {
		i += int64(n)
	}
	if i < 0 || i >= int64(n) {
		return 0, false
	}
	return int(i), true
}

// normRange converts a Redis start/stop range into [start, stop] positions;
// ok is false for an empty range.
func normRange(start, stop int64, n int) (int, int, bool) {
	if start < 0 {
		start += int64(n)
	}
	if stop < 0 {
		stop += int64(n)
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= int64(n) {
		return 0, 0, false
	}
	if stop >= int64(n) {
		stop = int64(n) - 1
	}
	return int(start), int(stop), true
}
