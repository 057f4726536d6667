package cli

import (
	"context"
	"fmt"

	"github.com/gantry-project/gantry/api"
)

// NamespaceOptions are the flags of `namespace apply`; only the fields
// marked Set change (a namespace keeps what a command does not name).
type NamespaceOptions struct {
	Description    string
	DescriptionSet bool
	// QuotaCPU (millicores) and QuotaMemoryMB cap the namespace's live
	// allocations; 0 removes that cap.
	QuotaCPU, QuotaMemoryMB       int64
	QuotaCPUSet, QuotaMemoryMBSet bool
}

// NamespaceApply creates a namespace or changes what the options name of
// an existing one.
func (e *Env) NamespaceApply(ctx context.Context, name string, o NamespaceOptions) error {
	nss, _, err := e.Client.Namespaces(ctx, nil)
	if err != nil {
		return fmt.Errorf("namespace apply %s: %w", name, e.Humanize(err))
	}
	ns := &api.Namespace{Name: name}
	for _, cur := range nss {
		if cur.Name == name {
			c := cur.Namespace
			ns = &c
		}
	}
	if o.DescriptionSet {
		ns.Description = o.Description
	}
	if o.QuotaCPUSet || o.QuotaMemoryMBSet {
		q := api.Quota{}
		if ns.Quota != nil {
			q = *ns.Quota
		}
		if o.QuotaCPUSet {
			q.CPU = o.QuotaCPU
		}
		if o.QuotaMemoryMBSet {
			q.MemoryMB = o.QuotaMemoryMB
		}
		ns.Quota = &q
	}
	resp, err := e.Client.ApplyNamespace(ctx, ns)
	if err != nil {
		return fmt.Errorf("namespace apply %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	_, err = fmt.Fprintf(e.Out, "Namespace %s applied at index %d\n", name, resp.Index)
	return err
}

// NamespaceList prints the namespaces with their jobs and what they hold
// against their quotas.
func (e *Env) NamespaceList(ctx context.Context) error {
	nss, _, err := e.Client.Namespaces(ctx, nil)
	if err != nil {
		return fmt.Errorf("namespace list: %w", e.Humanize(err))
	}
	if ok, err := e.printData(nss); ok {
		return err
	}
	t := newTable("NAME", "JOBS", "CPU (USED/QUOTA)", "MEMORY (USED/QUOTA)", "DESCRIPTION")
	for _, ns := range nss {
		cpu, mem := "-", "-"
		if q := ns.Quota; q != nil {
			cpu, mem = capOf(q.CPU, "m"), capOf(q.MemoryMB, " MiB")
		}
		t.row(ns.Name, ns.Jobs, fmt.Sprintf("%dm/%s", ns.Usage.CPU, cpu), fmt.Sprintf("%d MiB/%s", ns.Usage.MemoryMB, mem), orDash(ns.Description))
	}
	return t.write(e.Out)
}

// capOf shows one dimension of a quota ("-" when it is not capped).
func capOf(v int64, unit string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%d%s", v, unit)
}

// NamespaceDelete deletes a namespace; the server refuses while it holds
// jobs.
func (e *Env) NamespaceDelete(ctx context.Context, name string) error {
	resp, err := e.Client.DeleteNamespace(ctx, name)
	if err != nil {
		return fmt.Errorf("namespace delete %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	_, err = fmt.Fprintf(e.Out, "Namespace %s deleted at index %d\n", name, resp.Index)
	return err
}
