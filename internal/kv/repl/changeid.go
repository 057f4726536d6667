package repl

// ChangeReplID gives the server a new replication ID and forgets the
// previous one (DEBUG CHANGE-REPL-ID): replicas attached later cannot
// continue with a partial resync from the old history.
func (r *State) ChangeReplID() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replid = newReplID()
	r.replid2, r.secondOff = noReplID, -1
}
