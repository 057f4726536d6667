package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// What `gantry tls` makes: an ECDSA P-256 CA and certificates it signs,
// in files named as Nomad names its own.
const (
	// CAFile and CAKeyFile are the CA's certificate and private key.
	CAFile    = "gantry-agent-ca.pem"
	CAKeyFile = "gantry-agent-ca-key.pem"
	// DefaultCADays and DefaultCertDays are their default lifetimes.
	DefaultCADays   = 5 * 365
	DefaultCertDays = 365
)

// CertFiles returns the file names of a certificate of role in region and
// of its key: global-server-gantry.pem, global-server-gantry-key.pem.
func CertFiles(role Role, region string) (cert, key string) {
	base := region + "-" + string(role) + "-" + Domain
	return base + ".pem", base + "-key.pem"
}

// CAOptions describe a new CA.
type CAOptions struct {
	// CommonName of the CA ("" = "Gantry Agent CA <serial>").
	CommonName string
	// Days it is valid (0 = DefaultCADays).
	Days int
	// Now is the start of its validity (zero = time.Now()).
	Now time.Time
}

// GenerateCA makes a self-signed CA and returns its certificate and key
// in PEM.
func GenerateCA(o CAOptions) (certPEM, keyPEM []byte, err error) {
	if o.Days < 0 {
		return nil, nil, fmt.Errorf("days: must be > 0 (got %d)", o.Days)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	name := o.CommonName
	if name == "" {
		name = "Gantry Agent CA " + serial.String()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"gantry"}},
		NotBefore:             now.Add(-time.Minute), // a little clock skew
		NotAfter:              now.Add(days(o.Days, DefaultCADays)),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// It signs leaf certificates only.
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:   skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the CA: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// CertOptions describe a certificate signed by a CA.
type CertOptions struct {
	// Role and Region give the name the certificate carries
	// (RoleName(Role, Region)); servers check it.
	Role   Role
	Region string
	// DNSNames and IPs are added to the role name, localhost and
	// 127.0.0.1 (the addresses clients may dial it by).
	DNSNames []string
	IPs      []net.IP
	// Days it is valid (0 = DefaultCertDays).
	Days int
	// CACert and CAKey are the signing CA's certificate and key in PEM.
	CACert, CAKey []byte
	// Now is the start of its validity (zero = time.Now()).
	Now time.Time
}

// GenerateCert makes a certificate of o.Role signed by the CA and returns
// it and its key in PEM. Server and agent certificates serve and dial
// (server and client authentication); client certificates only dial.
func GenerateCert(o CertOptions) (certPEM, keyPEM []byte, err error) {
	if !o.Role.Valid() {
		return nil, nil, fmt.Errorf("role: must be server, agent or client (got %q)", o.Role)
	}
	if !ValidRegion(o.Region) {
		return nil, nil, fmt.Errorf("region: %q must be a DNS label (lower-case letters, digits and '-')", o.Region)
	}
	if o.Days < 0 {
		return nil, nil, fmt.Errorf("days: must be > 0 (got %d)", o.Days)
	}
	ca, caKey, err := parseCA(o.CACert, o.CAKey)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	name := RoleName(o.Role, o.Region)
	dns := []string{name, "localhost"}
	for _, d := range o.DNSNames {
		if d != "" && !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, ip := range o.IPs {
		if ip != nil && !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if o.Role == RoleClient {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	notAfter := now.Add(days(o.Days, DefaultCertDays))
	if notAfter.After(ca.NotAfter) {
		// A certificate outliving its CA would fail verification then
		// anyway; say so in its dates.
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"gantry"}},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		SubjectKeyId: skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func days(n, def int) time.Duration {
	if n == 0 {
		n = def
	}
	return time.Duration(n) * 24 * time.Hour
}

// parseCA reads a CA certificate and its private key (EC, PKCS#8 or
// PKCS#1) and checks that they belong together.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("CA certificate: no PEM CERTIFICATE block")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, nil, errors.New("CA certificate: it is not a CA certificate (basic constraints say so)")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, errors.New("CA key: no PEM block")
	}
	var key any
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("CA key: %T cannot sign", key)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, errors.New("CA key: it is not the key of the CA certificate")
	}
	return ca, signer, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// newSerial is a random 128-bit serial number, as RFC 5280 allows (at most
// 20 octets, positive).
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyID is the subject key identifier of a public key (the SHA-256 of its
// encoding, truncated to 20 bytes as RFC 7093 method 1 allows).
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key identifier: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

// File is one file `gantry tls` writes.
type File struct {
	Name string
	Data []byte
	Mode os.FileMode
}

// WriteFiles writes files into dir, never over an existing file: either
// all are written or none is left behind. Keys should have mode 0600.
func WriteFiles(dir string, files ...File) error {
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil {
			return fmt.Errorf("%s already exists; move it away or write elsewhere (--dir)", filepath.Join(dir, f.Name))
		}
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := writeNew(path, f.Data, f.Mode); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return err
		}
		written = append(written, path)
	}
	return nil
}

// writeNew creates path (which must not exist) with mode and data.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// CreateCA makes a CA (GenerateCA) and writes it into dir as CAFile and
// CAKeyFile (the key 0600); it returns their paths.
func CreateCA(dir string, o CAOptions) (certPath, keyPath string, err error) {
	certPEM, keyPEM, err := GenerateCA(o)
	if err != nil {
		return "", "", err
	}
	err = WriteFiles(dir, File{Name: CAFile, Data: certPEM, Mode: 0o644}, File{Name: CAKeyFile, Data: keyPEM, Mode: 0o600})
	if err != nil {
		return "", "", err
	}
	return filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), nil
}

// CreateCert makes a certificate signed by the CA in caCertPath and
// caKeyPath (GenerateCert; o.CACert and o.CAKey are read from them) and
// writes it into dir under CertFiles' names (the key 0600); it returns
// their paths.
func CreateCert(dir, caCertPath, caKeyPath string, o CertOptions) (certPath, keyPath string, err error) {
	if o.CACert, err = os.ReadFile(caCertPath); err != nil {
		return "", "", fmt.Errorf("CA certificate: %w", err)
	}
	if o.CAKey, err = os.ReadFile(caKeyPath); err != nil {
		return "", "", fmt.Errorf("CA key: %w", err)
	}
	certPEM, keyPEM, err := GenerateCert(o)
	if err != nil {
		return "", "", err
	}
	certName, keyName := CertFiles(o.Role, o.Region)
	err = WriteFiles(dir, File{Name: certName, Data: certPEM, Mode: 0o644}, File{Name: keyName, Data: keyPEM, Mode: 0o600})
	if err != nil {
		return "", "", err
	}
	return filepath.Join(dir, certName), filepath.Join(dir, keyName), nil
}

// CreateBundle makes a new CA in dir and one certificate of each role,
// and returns the Config of each role's holder: what `gantry bench --tls`
// and the tests run a throwaway cluster with.
func CreateBundle(dir, region string, roles ...Role) (map[Role]Config, error) {
	caCert, caKey, err := CreateCA(dir, CAOptions{})
	if err != nil {
		return nil, err
	}
	out := map[Role]Config{}
	for _, r := range roles {
		cert, key, err := CreateCert(dir, caCert, caKey, CertOptions{Role: r, Region: region})
		if err != nil {
			return nil, fmt.Errorf("%s certificate: %w", r, err)
		}
		cfg := DefaultConfig()
		cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Region = caCert, cert, key, region
		out[r] = cfg
	}
	return out, nil
}
