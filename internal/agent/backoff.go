package agent

import (
	"math/rand/v2"
	"time"
)

// backoff doubles a delay up to a cap, with up to 25% random jitter so many
// agents retrying after a server outage do not arrive in step.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	return jitter(b.cur, 0.25)
}

func (b *backoff) reset() { b.cur = 0 }

// jitter returns d minus a random fraction of up to frac of d.
func jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 {
		return d
	}
	return d - time.Duration(rand.Float64()*frac*float64(d))
}
