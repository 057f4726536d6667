package resp

import "testing"

func TestAppendFloatDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64)
	n := testing.AllocsPerRun(100, func() { buf = AppendFloat(buf[:0], 3479099956230698.5) })
	if n != 0 {
		t.Errorf("AppendFloat allocates %v times", n)
	}
}
