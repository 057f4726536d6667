package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

// TestTLSCommands: gantry tls ca create and cert create make files that
// load as a server's, an agent's and a client's TLS, and refuse bad flags.
func TestTLSCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := newTLSCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--dir", dir))
		err := cmd.Execute()
		return out.String(), err
	}
	ca, key := filepath.Join(dir, tlsutil.CAFile), filepath.Join(dir, tlsutil.CAKeyFile)
	if out, err := run("ca", "create"); err != nil || !strings.Contains(out, ca) {
		t.Fatalf("ca create: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		flag string
		role tlsutil.Role
	}{{"--server", tlsutil.RoleServer}, {"--agent", tlsutil.RoleAgent}, {"--client", tlsutil.RoleClient}} {
		// The CA is found in --dir without --ca and --key.
		out, err := run("cert", "create", tc.flag,
			"--additional-dnsname", "gantry.example", "--additional-ipaddress", "10.0.0.1")
		if err != nil {
			t.Fatalf("cert create %s: %v\n%s", tc.flag, err, out)
		}
		certName, keyName := tlsutil.CertFiles(tc.role, "global")
		cfg := tlsutil.DefaultConfig()
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = ca, filepath.Join(dir, certName), filepath.Join(dir, keyName)
		self := tc.role
		if self == tlsutil.RoleClient {
			self = tlsutil.RoleNone
		}
		st, err := tlsutil.Load(cfg, self)
		if err != nil {
			t.Fatalf("%s certificate does not load: %v", tc.role, err)
		}
		if c := st.Certificate(); tlsutil.RoleOf(c, "global") != tc.role || c.IPAddresses[1].String() != "10.0.0.1" {
			t.Errorf("%s certificate: names %v, IPs %v", tc.role, c.DNSNames, c.IPAddresses)
		}
		if fi, err := os.Stat(cfg.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode: %v %v", tc.role, fi.Mode(), err)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"cert", "create", "--ca", ca, "--key", key}, "exactly one of --server, --agent or --client"},
		{[]string{"cert", "create", "--server", "--client", "--ca", ca, "--key", key}, "exactly one of"},
		{[]string{"cert", "create", "--agent", "--region", "eu", "--additional-ipaddress", "10.0.0.300", "--ca", ca, "--key", key}, "not an IP address"},
		{[]string{"cert", "create", "--server", "--ca", ca, "--key", key}, "already exists"},
		{[]string{"cert", "create", "--agent", "--region", "EU", "--ca", ca, "--key", key}, "region"},
		{[]string{"ca", "create"}, "already exists"},
		{[]string{"cert", "create", "--agent", "--region", "eu", "--ca", filepath.Join(dir, "nope.pem")}, "nope.pem"},
	} {
		if out, err := run(bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v (%s), want an error saying %q", bad.args, err, out, bad.want)
		}
	}
}
