package cli

import (
	"context"
	"fmt"
)

// SystemGC runs garbage collection on the leader now and says what it
// deleted.
func (e *Env) SystemGC(ctx context.Context) error {
	resp, err := e.Client.SystemGC(ctx)
	if err != nil {
		return fmt.Errorf("system gc: %w", e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	if resp.Entries == 0 {
		fmt.Fprintln(e.Out, "Nothing to collect")
		return nil
	}
	fmt.Fprintf(e.Out, "Collected %d %s and %d %s in %d Raft %s (index %d)\n",
		resp.Allocations, plural(resp.Allocations, "allocation", "allocations"),
		resp.Jobs, plural(resp.Jobs, "job", "jobs"),
		resp.Entries, plural(resp.Entries, "entry", "entries"), resp.Index)
	return nil
}
