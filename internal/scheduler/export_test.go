package scheduler

// SetKeepCandidates replaces how many unchosen candidates a copy keeps for
// the next (tests compare with keeping none) and returns a restore.
func SetKeepCandidates(f func(sample int) int) (restore func()) {
	old := keepCandidates
	keepCandidates = f
	return func() { keepCandidates = old }
}
