package command

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

const refPrec = 300

// bigSinCos computes sin x and cos x to refPrec bits by their Taylor series
// (x is small: |x| < 4).
func bigSinCos(x float64) (s, c *big.Float) {
	return bigSinCosBig(new(big.Float).SetPrec(refPrec).SetFloat64(x))
}

// bigAsin solves sin y = z by Newton's method at refPrec bits.
func bigAsin(z float64) *big.Float {
	y := new(big.Float).SetPrec(refPrec).SetFloat64(math.Asin(z))
	bz := new(big.Float).SetPrec(refPrec).SetFloat64(z)
	for i := 0; i < 6; i++ {
		s, c := bigSinCosBig(y)
		d := new(big.Float).SetPrec(refPrec).Sub(s, bz)
		d.Quo(d, c)
		y.Sub(y, d)
	}
	return y
}

func bigSinCosBig(x *big.Float) (s, c *big.Float) {
	x2 := new(big.Float).SetPrec(refPrec).Mul(x, x)
	s = new(big.Float).SetPrec(refPrec).Set(x)
	c = new(big.Float).SetPrec(refPrec).SetInt64(1)
	ts := new(big.Float).SetPrec(refPrec).Set(x)
	tc := new(big.Float).SetPrec(refPrec).SetInt64(1)
	for n := int64(1); n < 120; n++ {
		ts.Mul(ts, x2).Quo(ts, big.NewFloat(float64((2*n)*(2*n+1)))).Neg(ts)
		tc.Mul(tc, x2).Quo(tc, big.NewFloat(float64((2*n-1)*(2*n)))).Neg(tc)
		s.Add(s, ts)
		c.Add(c, tc)
	}
	return s, c
}

// TestCorrectlyRounded checks sin, cos and asin against 300-bit references
// rounded to nearest, on the ranges geo distances use.
func TestCorrectlyRounded(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 1))
	bad := 0
	for i := 0; i < 1000; i++ {
		x := (rnd.Float64()*2 - 1) * math.Pi
		if i%3 == 0 {
			x = (rnd.Float64()*2 - 1) * 1e-3 // small differences of nearby points
		}
		s, c := bigSinCos(x)
		ws, _ := s.Float64()
		wc, _ := c.Float64()
		if got := crSin(x); got != ws {
			bad++
			t.Errorf("sin(%v) = %v, want %v", x, got, ws)
		}
		if got := crCos(x); got != wc {
			bad++
			t.Errorf("cos(%v) = %v, want %v", x, got, wc)
		}
		z := rnd.Float64() * 0.9999
		if i%2 == 0 {
			z *= 1e-4
		}
		wa, _ := bigAsin(z).Float64()
		if got := crAsin(z); got != wa {
			bad++
			t.Errorf("asin(%v) = %v, want %v", z, got, wa)
		}
		if bad > 10 {
			t.Fatal("too many")
		}
	}
}
