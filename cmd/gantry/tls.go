package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

func init() { rootCmd.AddCommand(newTLSCmd()) }

// tlsFlags maps the TLS flags of the server and the agent onto cfg.
func tlsFlags(f *pflag.FlagSet, cfg *tlsutil.Config) {
	f.StringVar(&cfg.CAFile, "ca-file", cfg.CAFile, "CA certificate bundle (PEM) every peer's certificate must chain to; with --cert-file and --key-file turns mutual TLS on")
	f.StringVar(&cfg.CertFile, "cert-file", cfg.CertFile, "this process's certificate (PEM), made by gantry tls cert create")
	f.StringVar(&cfg.KeyFile, "key-file", cfg.KeyFile, "the key of --cert-file (PEM)")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region of the certificates' role names (server.<region>.gantry)")
	f.BoolVar(&cfg.VerifyServerHostname, "verify-server-hostname", cfg.VerifyServerHostname, "check that servers (and, for servers, agents) present a certificate naming their role, not only one of the CA")
}

// reloadOnHUP calls reload on every SIGHUP until ctx is done; reload logs
// its own outcome (a failed reload keeps the old certificate).
func reloadOnHUP(ctx context.Context, logger *slog.Logger, reload func() error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading TLS certificates")
				_ = reload()
			}
		}
	}()
}

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Make a CA and certificates for mutual TLS between servers, agents and clients",
		Long: `tls makes what a small cluster needs for mutual TLS, as nomad tls and consul
tls do: a CA (ECDSA P-256) and certificates it signs for servers, agents and
clients. Servers check the role a certificate names (server.<region>.gantry,
agent.<region>.gantry or client.<region>.gantry), so a client certificate
cannot act as a server or an agent. Keep the CA key offline.`,
		Example: `  gantry tls ca create
  gantry tls cert create --server --additional-ipaddress 10.0.0.1
  gantry tls cert create --agent
  gantry tls cert create --client`,
	}
	ca := &cobra.Command{Use: "ca", Short: "Make a certificate authority"}
	ca.AddCommand(newTLSCACreateCmd())
	cert := &cobra.Command{Use: "cert", Short: "Make certificates signed by the CA"}
	cert.AddCommand(newTLSCertCreateCmd())
	cmd.AddCommand(ca, cert)
	return cmd
}

func newTLSCACreateCmd() *cobra.Command {
	var (
		dir  string
		o    tlsutil.CAOptions
		days int
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a CA: " + tlsutil.CAFile + " and " + tlsutil.CAKeyFile,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days <= 0 {
				return fmt.Errorf("--days: must be > 0 (got %d)", days)
			}
			o.Days = days
			certPath, keyPath, err := tlsutil.CreateCA(dir, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "==> CA certificate saved to %s\n==> CA key saved to %s (keep it secret, and offline)\n", certPath, keyPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "directory to write the files into (existing files are never overwritten)")
	f.IntVar(&days, "days", tlsutil.DefaultCADays, "days the CA is valid")
	f.StringVar(&o.CommonName, "common-name", "", "the CA's common name (default: Gantry Agent CA <serial>)")
	return cmd
}

func newTLSCertCreateCmd() *cobra.Command {
	var (
		dir, caFile, keyFile string
		server, agent, cli   bool
		region               string
		days                 int
		dnsNames, ipStrs     []string
	)
	cmd := &cobra.Command{
		Use:   "create --server|--agent|--client",
		Short: "Make a server, agent or client certificate signed by the CA",
		Long: `create makes a certificate and its key, signed by the CA, named
<region>-<role>-gantry.pem and <region>-<role>-gantry-key.pem (the key 0600).
Each names its role (server.<region>.gantry, ...), localhost and 127.0.0.1,
and what --additional-dnsname and --additional-ipaddress add. Server and
agent certificates serve and dial; client certificates only dial.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var role tlsutil.Role
			n := 0
			for _, c := range []struct {
				set  bool
				role tlsutil.Role
			}{{server, tlsutil.RoleServer}, {agent, tlsutil.RoleAgent}, {cli, tlsutil.RoleClient}} {
				if c.set {
					role = c.role
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("exactly one of --server, --agent or --client is required")
			}
			if days <= 0 {
				return fmt.Errorf("--days: must be > 0 (got %d)", days)
			}
			// The CA made by `tls ca create --dir D` is found in D.
			if !cmd.Flags().Changed("ca") {
				caFile = filepath.Join(dir, tlsutil.CAFile)
			}
			if !cmd.Flags().Changed("key") {
				keyFile = filepath.Join(dir, tlsutil.CAKeyFile)
			}
			var ips []net.IP
			for _, s := range ipStrs {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--additional-ipaddress %q: not an IP address", s)
				}
				ips = append(ips, ip)
			}
			certPath, keyPath, err := tlsutil.CreateCert(dir, caFile, keyFile, tlsutil.CertOptions{
				Role: role, Region: region, DNSNames: dnsNames, IPs: ips, Days: days})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "==> %s certificate (%s) saved to %s\n==> key saved to %s\n",
				role, tlsutil.RoleName(role, region), certPath, keyPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&server, "server", false, "a server certificate (server.<region>.gantry)")
	f.BoolVar(&agent, "agent", false, "an agent certificate (agent.<region>.gantry)")
	f.BoolVar(&cli, "client", false, "a client certificate for the CLI and API users (client.<region>.gantry)")
	f.StringVar(&region, "region", tlsutil.DefaultRegion, "region in the role name")
	f.StringVar(&caFile, "ca", tlsutil.CAFile, "the CA certificate (default: in --dir)")
	f.StringVar(&keyFile, "key", tlsutil.CAKeyFile, "the CA key (default: in --dir)")
	f.IntVar(&days, "days", tlsutil.DefaultCertDays, "days the certificate is valid (never past the CA's end)")
	f.StringArrayVar(&dnsNames, "additional-dnsname", nil, "another DNS name to add (repeatable)")
	f.StringArrayVar(&ipStrs, "additional-ipaddress", nil, "another IP address to add (repeatable)")
	f.StringVar(&dir, "dir", ".", "directory to write the files into (existing files are never overwritten)")
	return cmd
}
