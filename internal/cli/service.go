package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/api"
)

// ServiceInfoOptions are the flags of `service info`.
type ServiceInfoOptions struct {
	All bool   // include unhealthy instances
	Tag string // only instances with this tag
}

// ServiceList prints the services with their instance counts.
func (e *Env) ServiceList(ctx context.Context) error {
	list, _, err := e.Client.Services(ctx, nil)
	if err != nil {
		return fmt.Errorf("service list: %w", e.Humanize(err))
	}
	if ok, err := e.printData(list); ok {
		return err
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(e.Out, "No services (jobs declare them with services:)")
		return err
	}
	t := newTable("NAME", "NAMESPACE", "HEALTHY", "TAGS")
	for _, s := range list {
		t.row(s.Name, s.Namespace, fmt.Sprintf("%d/%d", s.Healthy, s.Instances), orDash(strings.Join(s.Tags, ",")))
	}
	return t.write(e.Out)
}

// ServiceInfo prints a service's instances.
func (e *Env) ServiceInfo(ctx context.Context, name string, o ServiceInfoOptions) error {
	ins, _, err := e.Client.Service(ctx, name, &api.ServiceQuery{All: o.All, Tag: o.Tag}, nil)
	if err != nil {
		return fmt.Errorf("service info %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(ins); ok {
		return err
	}
	if len(ins) == 0 {
		what := "healthy instances"
		if o.All {
			what = "instances"
		}
		_, err := fmt.Fprintf(e.Out, "Service %q has no %s\n", name, what)
		return err
	}
	t := newTable("ALLOC", "NAME", "NODE", "ADDRESS", "HEALTH", "CHECKS")
	for _, in := range ins {
		addr := in.Address
		if in.Port > 0 {
			addr = net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
		}
		t.row(shortID(in.AllocID), in.AllocName, orDash(in.NodeName), addr, healthWord(in.Healthy), checksSummary(in.Checks))
	}
	return t.write(e.Out)
}

func healthWord(ok bool) string {
	if ok {
		return "healthy"
	}
	return "unhealthy"
}

// checksSummary is "name=status" per check.
func checksSummary(cs []api.CheckStatus) string {
	if len(cs) == 0 {
		return "-"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Status
	}
	return strings.Join(parts, ",")
}

// HealthText is how job and alloc status show a copy's health.
func HealthText(h *api.AllocHealth) string {
	if h == nil {
		return "-"
	}
	return healthWord(h.Healthy)
}
