package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// TestClientTLSFlags: the TLS flags (and their environment variables)
// turn TLS on for the client, default the address to https, and a bad
// file is an error naming the flag's value.
func TestClientTLSFlags(t *testing.T) {
	pki, err := tlsutil.CreateBundle(t.TempDir(), "global", tlsutil.RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	c := pki[tlsutil.RoleClient]
	env := func(cmd *cobra.Command, o *Options) (*Env, error) {
		return o.Env(cmd)
	}
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		addrs []string
		err   string
	}{
		{"no TLS", nil, nil, []string{api.DefaultAddress}, ""},
		{"flags", nil, []string{"--ca-file", c.CAFile, "--cert-file", c.CertFile, "--key-file", c.KeyFile},
			[]string{api.DefaultTLSAddress}, ""},
		{"environment", map[string]string{api.EnvCACert: c.CAFile, api.EnvClientCert: c.CertFile, api.EnvClientKey: c.KeyFile},
			nil, []string{api.DefaultTLSAddress}, ""},
		{"addresses without a scheme", nil, []string{"--ca-file", c.CAFile, "--cert-file", c.CertFile, "--key-file", c.KeyFile,
			"--address", "10.0.0.1:4646,http://10.0.0.2:4646"}, []string{"https://10.0.0.1:4646", "http://10.0.0.2:4646"}, ""},
		{"key without its certificate", nil, []string{"--ca-file", c.CAFile, "--key-file", c.KeyFile}, nil, "tls.cert_file: is required"},
		{"missing CA file", nil, []string{"--ca-file", "/nonexistent/ca.pem"}, nil, "/nonexistent/ca.pem"},
		{"certificate without a CA", nil, []string{"--cert-file", c.CertFile, "--key-file", c.KeyFile}, nil, "CA certificate is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{api.EnvAddress, api.EnvCACert, api.EnvClientCert, api.EnvClientKey, api.EnvTLSServerName} {
				t.Setenv(k, tc.env[k])
			}
			cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
			o := AddClientFlags(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			e, err := env(cmd, o)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Client.Addresses(); strings.Join(got, ",") != strings.Join(tc.addrs, ",") {
				t.Errorf("addresses %v, want %v", got, tc.addrs)
			}
		})
	}
}
