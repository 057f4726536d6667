package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gantry-project/gantry/api"
)

// FrameworkList prints the registered frameworks (two-level scheduling).
func (e *Env) FrameworkList(ctx context.Context) error {
	fws, err := e.Client.Frameworks(ctx)
	if err != nil {
		return fmt.Errorf("listing frameworks: %w", e.Humanize(err))
	}
	if ok, err := e.printData(fws); ok {
		return err
	}
	list := make([]api.FrameworkStatus, len(fws))
	for i, f := range fws {
		list[i] = *f
	}
	return frameworkTable(e.Out, list)
}

// frameworkTable writes one row per framework.
func frameworkTable(w io.Writer, fws []api.FrameworkStatus) error {
	t := newTable("ID", "NAME", "ROLE", "STATE", "SHARE", "OFFERS", "ALLOCATED", "SENT", "ACCEPTED", "DECLINED", "RESCINDED", "TASKS", "WAITING")
	for _, f := range fws {
		id := shortID(f.ID)
		if f.BuiltIn {
			id = "built-in"
		}
		t.row(id, f.Name, f.Role, frameworkState(f), fmt.Sprintf("%.3f", f.DominantShare), f.OffersHeld,
			cpuMem(f.Allocated), f.OffersSent, f.Accepted, f.Declined, f.Rescinded+f.Expired, f.Tasks, f.JobsWaiting)
	}
	return t.write(w)
}

func frameworkState(f api.FrameworkStatus) string {
	switch {
	case !f.Connected:
		return fmt.Sprintf("away %s", (time.Duration(f.DisconnectedSec * float64(time.Second))).Round(time.Second))
	case f.Suppressed:
		return "suppressed"
	}
	return "active"
}

// FrameworkStatus prints one framework, by ID or name, with its tasks.
func (e *Env) FrameworkStatus(ctx context.Context, ref string) error {
	d, err := e.Client.Framework(ctx, ref)
	if err != nil {
		return fmt.Errorf("framework %s: %w", ref, e.Humanize(err))
	}
	if ok, err := e.printData(d); ok {
		return err
	}
	f := d.Framework
	k := &kv{}
	k.add("ID", f.ID)
	k.add("Name", f.Name)
	k.add("Role", fmt.Sprintf("%s (weight %g)", f.Role, f.Weight))
	k.add("Built in", f.BuiltIn)
	k.add("State", frameworkState(f))
	if !f.BuiltIn {
		k.add("Failover timeout", (time.Duration(f.FailoverTimeoutSec * float64(time.Second))).String())
	}
	k.add("Dominant share", fmt.Sprintf("%.3f", f.DominantShare))
	k.add("Allocated", cpuMem(f.Allocated))
	k.add("Offers held", fmt.Sprintf("%d (%s)", f.OffersHeld, cpuMem(f.Offered)))
	k.add("Offers", fmt.Sprintf("%d sent, %d accepted, %d declined, %d rescinded, %d expired", f.OffersSent, f.Accepted, f.Declined, f.Rescinded, f.Expired))
	if f.BuiltIn {
		k.add("Jobs waiting", f.JobsWaiting)
		k.add("Placements", f.Launched)
		if f.DecisionDelayMs > 0 {
			k.add("Decision delay", fmt.Sprintf("%.0f ms", f.DecisionDelayMs))
		}
		return k.write(e.Out)
	}
	k.add("Tasks", fmt.Sprintf("%d live, %d launched", f.Tasks, f.Launched))
	if err := k.write(e.Out); err != nil {
		return err
	}
	fmt.Fprintln(e.Out, "\nTasks")
	if len(d.Tasks) == 0 {
		fmt.Fprintln(e.Out, "No tasks")
		return nil
	}
	t := newTable("TASK", "STATE", "NODE", "ALLOCATION", "MESSAGE")
	for _, st := range d.Tasks {
		t.row(st.TaskID, string(st.State), orDash(st.AgentID), orDash(shortID(st.AllocID)), orDash(st.Message))
	}
	if err := t.write(e.Out); err != nil {
		return err
	}
	if d.TasksOmitted > 0 {
		fmt.Fprintf(e.Out, "(%d more tasks not shown)\n", d.TasksOmitted)
	}
	return nil
}
