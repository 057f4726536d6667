// Package cli holds what gantry's client commands (job, node, alloc,
// scheduler) share: the address and output flags, readable errors, tables,
// JSON/YAML output, and the commands' logic itself, written against an
// Env so tests drive them with an httptest server and a buffer.
//
// cmd/gantry only wires cobra commands to the functions here.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/api"
)

// Output formats for -o.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Options are the flags every client command takes.
type Options struct {
	// Address is one or more comma-separated server URLs.
	Address string
	// Output is table, json or yaml.
	Output string
	// TLS are the TLS files and the server name to check; any file set
	// turns TLS on.
	TLS api.TLSConfig
	// Token is the ACL token secret sent with every request.
	Token string
	// Namespace is the namespace of job and allocation commands ("*":
	// every namespace, for listings); set only by nouns that take
	// -n (AddNamespaceFlag).
	Namespace string
}

// AddClientFlags registers --address and -o/--output as persistent flags of
// cmd (a noun such as "job"), so every verb under it takes them.
//
// They are not registered on the root command: server, agent and peer
// commands have flags of their own and must not inherit a client's
// --address or a -o shorthand they might want for something else.
func AddClientFlags(cmd *cobra.Command) *Options {
	o := &Options{}
	def := os.Getenv("GANTRY_ADDR")
	if def == "" {
		def = api.DefaultAddress
	}
	fs := cmd.PersistentFlags()
	fs.StringVar(&o.Address, "address", def, "gantry server address(es), comma-separated (env GANTRY_ADDR)")
	fs.StringVarP(&o.Output, "output", "o", FormatTable, "output format: table, json or yaml")
	fs.StringVar(&o.TLS.CACert, "ca-file", os.Getenv(api.EnvCACert), "CA certificate (PEM) the servers' certificates must chain to; turns TLS on (env "+api.EnvCACert+")")
	fs.StringVar(&o.TLS.ClientCert, "cert-file", os.Getenv(api.EnvClientCert), "client certificate (PEM) to present, e.g. global-client-gantry.pem (env "+api.EnvClientCert+")")
	fs.StringVar(&o.TLS.ClientKey, "key-file", os.Getenv(api.EnvClientKey), "key of --cert-file (env "+api.EnvClientKey+")")
	fs.StringVar(&o.TLS.ServerName, "tls-server-name", os.Getenv(api.EnvTLSServerName), "name the servers' certificates must carry (default "+api.DefaultTLSServerName+"; env "+api.EnvTLSServerName+")")
	fs.StringVar(&o.Token, "token", os.Getenv("GANTRY_TOKEN"), "ACL token secret sent with every request (env GANTRY_TOKEN)")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{FormatTable, FormatJSON, FormatYAML}, cobra.ShellCompDirectiveNoFileComp
	})
	return o
}

// AddNamespaceFlag registers -n/--namespace on a noun whose objects live
// in namespaces (jobs, allocations), for every verb under it.
func AddNamespaceFlag(cmd *cobra.Command, o *Options) {
	cmd.PersistentFlags().StringVarP(&o.Namespace, "namespace", "n", os.Getenv("GANTRY_NAMESPACE"),
		`namespace of the jobs and allocations ("*" lists every namespace you may read; default "default"; env GANTRY_NAMESPACE)`)
}

// Env builds the environment a command runs in: an API client for the
// address, stdout/stderr, and whether stdout is a terminal.
func (o *Options) Env(cmd *cobra.Command) (*Env, error) {
	format := strings.ToLower(o.Output)
	switch format {
	case FormatTable, FormatJSON, FormatYAML:
	default:
		return nil, fmt.Errorf("-o %q: output format must be table, json or yaml", o.Output)
	}
	cfg := api.Config{Address: o.Address, Token: o.Token, Namespace: o.Namespace}
	if o.TLS.CACert != "" || o.TLS.ClientCert != "" || o.TLS.ClientKey != "" {
		tc := o.TLS
		cfg.TLS = &tc
		if cfg.Address == api.DefaultAddress {
			cfg.Address = api.DefaultTLSAddress
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		if cfg.TLS != nil {
			return nil, fmt.Errorf("--address or TLS flags: %w", err)
		}
		return nil, fmt.Errorf("--address: %w", err)
	}
	out := cmd.OutOrStdout()
	return &Env{
		Client: client,
		Out:    out,
		Err:    cmd.ErrOrStderr(),
		Format: format,
		Now:    time.Now,
		TTY:    isTerminal(out),
	}, nil
}

// Env is what a command needs to run: the client, where to write, and a
// clock (injected so tests render fixed ages).
type Env struct {
	Client *api.Client
	Out    io.Writer
	Err    io.Writer
	// Format is table, json or yaml.
	Format string
	Now    func() time.Time
	// TTY is true when Out is a terminal: progress redraws one line in
	// place instead of printing a line per change.
	TTY bool
}

// isTerminal reports whether w is a character device (a terminal), without
// a dependency: good enough to choose between redrawn and plain progress.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Context returns the command's context, cancelled on Ctrl-C or SIGTERM so
// a follow or a log stream ends cleanly.
func Context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Complete returns a cobra completion function that lists names from the
// server (job names, node names ...) for the first argument. It gives up
// quickly: completion must never hang a shell.
func (o *Options) Complete(list func(e *Env, ctx context.Context) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		e, err := o.Env(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return list(e, ctx), cobra.ShellCompDirectiveNoFileComp
	}
}
