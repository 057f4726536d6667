package command

import "math"

// Sine, cosine and arcsine rounded correctly (but for values within about
// 1e-30 of a rounding boundary) for the geo distances: Redis computes them
// with the C library, whose results are the correctly rounded ones in all
// but rare cases, while Go's math.Sin and math.Asin are off by one unit in
// the last place often enough to change a stored distance's last digits.
// The functions compute in double-double arithmetic (a value is hi+lo).

type dd struct{ hi, lo float64 }

func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

func (a dd) add(b dd) dd {
	s := twoSum(a.hi, b.hi)
	t := twoSum(a.lo, b.lo)
	s.lo += t.hi
	s = quickTwoSum(s.hi, s.lo)
	s.lo += t.lo
	return quickTwoSum(s.hi, s.lo)
}

func (a dd) neg() dd { return dd{-a.hi, -a.lo} }

func (a dd) mul(b dd) dd {
	p := twoProd(a.hi, b.hi)
	p.lo += a.hi*b.lo + a.lo*b.hi
	return quickTwoSum(p.hi, p.lo)
}

func (a dd) mulf(b float64) dd {
	p := twoProd(a.hi, b)
	p.lo += a.lo * b
	return quickTwoSum(p.hi, p.lo)
}

// divf divides by b in double-double (a coefficient 1/b rounded to a
// double would cost the precision this is for).
func (a dd) divf(b float64) dd {
	q1 := a.hi / b
	r := a.add(twoProd(-q1, b))
	q2 := r.hi / b
	r = r.add(twoProd(-q2, b))
	q3 := r.hi / b
	q := quickTwoSum(q1, q2)
	return q.add(dd{q3, 0})
}

// value rounds a double-double to the nearest double.
func (a dd) value() float64 { return a.hi + a.lo }

// π/2 as the sum of three doubles.
var pio2 = [3]float64{1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33}

// reduce returns k and r with x = k·π/2 + r, |r| <= π/4 (for the moderate
// arguments geo uses).
func reduce(x float64) (int, dd) {
	k := math.Round(x / pio2[0])
	r := dd{x, 0}
	for _, p := range pio2 {
		r = r.add(twoProd(-k, p))
	}
	return int(k), r
}

// sinCosReduced returns sin r and cos r for |r| <= π/4 by their Taylor
// series (terms up to r^29/29!, below 1e-34 relative).
func sinCosReduced(r dd) (s, c dd) {
	r2 := r.mul(r)
	term := r // r^n / n!, n odd
	s = r
	for n := 3; n <= 29; n += 2 {
		term = term.mul(r2).divf(-float64((n - 1) * n))
		s = s.add(term)
	}
	term = dd{1, 0} // r^n / n!, n even
	c = dd{1, 0}
	for n := 2; n <= 30; n += 2 {
		term = term.mul(r2).divf(-float64((n - 1) * n))
		c = c.add(term)
	}
	return s, c
}

func ddSinCos(x float64) (s, c dd) {
	k, r := reduce(x)
	sr, cr := sinCosReduced(r)
	switch k & 3 {
	case 0:
		return sr, cr
	case 1:
		return cr, sr.neg()
	case 2:
		return sr.neg(), cr.neg()
	}
	return cr.neg(), sr
}

// crSin is sin x rounded to nearest.
func crSin(x float64) float64 {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1e6 {
		return math.Sin(x)
	}
	s, _ := ddSinCos(x)
	return s.value()
}

// crCos is cos x rounded to nearest.
func crCos(x float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1e6 {
		return math.Cos(x)
	}
	_, c := ddSinCos(x)
	return c.value()
}

// crAsin is asin z rounded to nearest: two Newton steps on sin y = z from
// math.Asin, in double-double.
func crAsin(z float64) float64 {
	y0 := math.Asin(z)
	if z == 0 || math.IsNaN(y0) || math.Abs(z) > 0.9999 {
		return y0 // where asin is steep Newton gains nothing; rare for distances
	}
	y := dd{y0, 0}
	for i := 0; i < 2; i++ {
		s, c := ddSinCos(y.hi)
		// sin(y.hi + y.lo) ≈ s + c·y.lo
		s = s.add(c.mulf(y.lo))
		diff := s.add(dd{-z, 0})
		y = y.add(dd{-diff.value() / c.value(), 0})
	}
	return y.value()
}
