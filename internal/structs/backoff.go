package structs

import "time"

// Delay functions of the restart and reschedule policies (Nomad's
// delay_function): how the wait before a retry grows with each retry.
const (
	// DelayConstant waits Delay before every retry.
	DelayConstant = "constant"
	// DelayExponential doubles the wait with each retry: Delay, 2×Delay,
	// 4×Delay ... up to MaxDelay.
	DelayExponential = "exponential"
	// DelayFibonacci grows the wait as the Fibonacci numbers: Delay,
	// Delay, 2×Delay, 3×Delay, 5×Delay ... up to MaxDelay.
	DelayFibonacci = "fibonacci"
)

// BackoffDelay returns the wait before retry number attempt (1 is the
// first) under a delay function. "" is DelayConstant (policies stored
// before the field existed). The growing functions never exceed maxDelay,
// and never overflow however large attempt is (an unlimited reschedule
// chain counts forever); maxDelay <= 0 leaves them uncapped up to the
// largest duration. An unknown function is taken as constant: Validate
// refuses it before it is stored.
func BackoffDelay(function string, delay, maxDelay time.Duration, attempt int) time.Duration {
	if delay <= 0 {
		return 0
	}
	limit := maxDelay
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	switch function {
	case DelayExponential:
		d := delay
		for i := 1; i < attempt && d < limit; i++ {
			if d > limit/2 {
				d = limit
			} else {
				d *= 2
			}
		}
		return min(d, limit)
	case DelayFibonacci:
		// a is the wait of retry i, b of retry i+1.
		a, b := delay, delay
		for i := 1; i < attempt && a < limit; i++ {
			next := limit
			if b <= limit-a {
				next = a + b
			}
			a, b = b, next
		}
		return min(a, limit)
	}
	return delay
}

// NextDelay returns the wait before restart number attempt within the
// policy's interval (1 is the first).
func (p RestartPolicy) NextDelay(attempt int) time.Duration {
	return BackoffDelay(p.DelayFunction, p.Delay.D(), p.MaxDelay.D(), attempt)
}

// NextDelay returns the wait before replacement number attempt of a chain
// (1 is the first).
func (p ReschedulePolicy) NextDelay(attempt int) time.Duration {
	return BackoffDelay(p.DelayFunction, p.Delay.D(), p.MaxDelay.D(), attempt)
}
