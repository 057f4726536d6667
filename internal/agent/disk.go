package agent

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// DefaultDiskMinFreeMB is the free space below which a node stops taking
// new placements.
const DefaultDiskMinFreeMB = 100

// statfsFree is the space unprivileged writers may still use on the file
// system holding path (what a task writing its logs gets).
func statfsFree(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// checkDisk sets the node's ineligibility from the free space of the data
// dir and reports whether eligibility changed. A node whose disk is full
// would fail every allocation placed on it (no room for the task's logs
// and state) while looking ready; ineligible, the scheduler places
// elsewhere, and the tasks already there keep running.
func (a *Agent) checkDisk() bool {
	if a.cfg.DiskMinFreeMB < 0 {
		return false
	}
	free, err := a.cfg.DiskFree(a.cfg.DataDir)
	if err != nil {
		// Keep the last verdict: a failing statfs says nothing about space.
		a.log.Warn("checking free disk space", "dir", a.cfg.DataDir, "err", err)
		return false
	}
	reason := ""
	if minFree := uint64(a.cfg.DiskMinFreeMB) << 20; free < minFree {
		reason = fmt.Sprintf("data disk full (%d MiB free, minimum %d MiB)", free>>20, a.cfg.DiskMinFreeMB)
	}
	a.mu.Lock()
	was := a.node.Ineligible
	changed := (was == "") != (reason == "")
	if changed {
		// While it stays ineligible the first reason stands: a new
		// figure at every check would mean a registration at every check.
		a.node.Ineligible = reason
	}
	a.mu.Unlock()
	switch {
	case changed && reason != "":
		a.log.Warn("node is ineligible for new placements", "reason", reason, "dir", a.cfg.DataDir)
	case changed:
		a.log.Info("node is eligible again", "free_mb", free>>20, "was", was)
	}
	return changed
}

// diskLoop checks the free space every DiskCheckInterval and registers the
// node again when its eligibility changes (registration carries it, and
// makes the servers retry jobs blocked for lack of nodes).
func (a *Agent) diskLoop(ctx context.Context) {
	if a.cfg.DiskMinFreeMB < 0 {
		return
	}
	t := time.NewTicker(a.cfg.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.checkDisk() {
			a.triggerReregister()
		}
	}
}
