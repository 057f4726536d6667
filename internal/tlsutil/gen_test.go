package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCreateCAAndCerts(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	caCert, caKey, err := CreateCA(dir, CAOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, caCert)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, MaxPathLenZero %v, key usage %v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if got := ca.NotAfter.Sub(now); got != DefaultCADays*24*time.Hour {
		t.Errorf("CA lifetime %s", got)
	}
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if !strings.HasPrefix(ca.Subject.CommonName, "Gantry Agent CA ") {
		t.Errorf("CA common name %q", ca.Subject.CommonName)
	}

	cases := []struct {
		role   Role
		region string
		extra  []string
		ips    []net.IP
		usage  []x509.ExtKeyUsage
		file   string
	}{
		{RoleServer, "global", []string{"gantry.example"}, []net.IP{net.ParseIP("10.0.0.1")},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "global-server-gantry.pem"},
		{RoleAgent, "eu-1", nil, nil,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "eu-1-agent-gantry.pem"},
		{RoleClient, "global", nil, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, "global-client-gantry.pem"},
	}
	for _, tc := range cases {
		t.Run(string(tc.role), func(t *testing.T) {
			certPath, keyPath, err := CreateCert(dir, caCert, caKey, CertOptions{
				Role: tc.role, Region: tc.region, DNSNames: tc.extra, IPs: tc.ips, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(certPath) != tc.file || filepath.Base(keyPath) != strings.TrimSuffix(tc.file, ".pem")+"-key.pem" {
				t.Errorf("files %s, %s", certPath, keyPath)
			}
			fi, err := os.Stat(keyPath)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
			}
			c := parseCert(t, certPath)
			wantDNS := append([]string{RoleName(tc.role, tc.region), "localhost"}, tc.extra...)
			if !slices.Equal(c.DNSNames, wantDNS) {
				t.Errorf("DNS names %v, want %v", c.DNSNames, wantDNS)
			}
			wantIPs := append([]net.IP{net.IPv4(127, 0, 0, 1)}, tc.ips...)
			if !slices.EqualFunc(c.IPAddresses, wantIPs, net.IP.Equal) {
				t.Errorf("IPs %v, want %v", c.IPAddresses, wantIPs)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.usage) {
				t.Errorf("extended key usage %v, want %v", c.ExtKeyUsage, tc.usage)
			}
			if got := c.NotAfter.Sub(now); got != DefaultCertDays*24*time.Hour {
				t.Errorf("lifetime %s", got)
			}
			if err := c.CheckSignatureFrom(ca); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
			if RoleOf(c, tc.region) != tc.role {
				t.Errorf("RoleOf = %q", RoleOf(c, tc.region))
			}
		})
	}

	// Never over an existing file, and nothing half-written.
	if _, _, err := CreateCA(dir, CAOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second CA in the same dir: %v", err)
	}
	if _, _, err := CreateCert(dir, caCert, caKey, CertOptions{Role: RoleServer, Region: "global"}); err == nil {
		t.Error("second server cert over the first: no error")
	}
}

func TestGenerateCertErrors(t *testing.T) {
	caPEM, keyPEM, err := GenerateCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := GenerateCA(CAOptions{})
	leafPEM, leafKey, err := GenerateCert(CertOptions{Role: RoleServer, Region: "global", CACert: caPEM, CAKey: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    CertOptions
		want string
	}{
		{"no role", CertOptions{Region: "global", CACert: caPEM, CAKey: keyPEM}, "role: must be"},
		{"bad region", CertOptions{Role: RoleAgent, Region: "a.b", CACert: caPEM, CAKey: keyPEM}, "region:"},
		{"key of another CA", CertOptions{Role: RoleAgent, Region: "global", CACert: caPEM, CAKey: otherKey}, "not the key of the CA certificate"},
		{"leaf as CA", CertOptions{Role: RoleAgent, Region: "global", CACert: leafPEM, CAKey: leafKey}, "not a CA certificate"},
		{"no CA", CertOptions{Role: RoleAgent, Region: "global", CAKey: keyPEM}, "no PEM CERTIFICATE"},
		{"negative days", CertOptions{Role: RoleAgent, Region: "global", Days: -1, CACert: caPEM, CAKey: keyPEM}, "days"},
	}
	for _, tc := range cases {
		if _, _, err := GenerateCert(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// TestCertNotPastCA: a certificate never outlives the CA that signs it.
func TestCertNotPastCA(t *testing.T) {
	caPEM, keyPEM, err := GenerateCA(CAOptions{Days: 10})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := GenerateCert(CertOptions{Role: RoleClient, Region: "global", Days: 365, CACert: caPEM, CAKey: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644)
	_ = os.WriteFile(filepath.Join(dir, "c.pem"), certPEM, 0o644)
	ca, c := parseCert(t, filepath.Join(dir, "ca.pem")), parseCert(t, filepath.Join(dir, "c.pem"))
	if c.NotAfter.After(ca.NotAfter) {
		t.Errorf("certificate ends %s, after its CA (%s)", c.NotAfter, ca.NotAfter)
	}
}
