package command

import (
	"fmt"
	"testing"
)

// A command's latency histogram answers as Redis's HDR histogram (1 ns to
// 1 s, 2 significant figures, durations recorded as µs*1000 ns): the
// percentiles are the highest value equivalent to the call they fall on
// (the lowest for p0), and LATENCY HISTOGRAM's levels are the highest
// value equivalent to each power of two from 1024 ns, in µs.
func TestHDRLatency(t *testing.T) {
	cases := []struct {
		usec    []int64
		pcts    []float64
		want    []int64 // ns
		buckets string
	}{
		{[]int64{7}, []float64{0, 50, 100}, []int64{6976, 7007, 7007}, "[[8 1]]"},
		{[]int64{0}, []float64{0, 50}, []int64{1, 1}, "[[1 1]]"},
		{[]int64{0, 1, 2, 3, 4, 5, 16, 17, 32, 33, 34}, []float64{10, 50, 90, 99.9}, []int64{1, 5023, 33023, 34047},
			"[[1 2] [2 3] [4 5] [8 6] [16 7] [33 10] [66 11]]"},
		{[]int64{1000, 1_000_000, 5_000_000}, []float64{1, 60, 100}, []int64{1003519, 1002438655, 1002438655},
			"[[1056 1] [1073741 3]]"},
		// the call at a percentile is rounded to the nearest: 1.49 is the 1st, 1.5 the 2nd
		{[]int64{1, 2, 3, 4}, []float64{37.25, 37.5, 60}, []int64{1003, 2007, 2007}, "[[1 1] [2 2] [4 4]]"},
	}
	for _, tc := range cases {
		var st CallStats
		for _, u := range tc.usec {
			st.Record(u, true)
		}
		l := st.Latency()
		if l.Total() != int64(len(tc.usec)) {
			t.Errorf("%v: total %d", tc.usec, l.Total())
		}
		for i, p := range tc.pcts {
			if got := l.Percentile(p); got != tc.want[i] {
				t.Errorf("%v: p%v = %d, want %d", tc.usec, p, got, tc.want[i])
			}
		}
		if got := fmt.Sprint(l.LogBuckets()); got != tc.buckets {
			t.Errorf("%v: buckets %s, want %s", tc.usec, got, tc.buckets)
		}
		st.Reset()
		if st.Latency() != nil {
			t.Errorf("%v: a histogram after Reset", tc.usec)
		}
	}
}
