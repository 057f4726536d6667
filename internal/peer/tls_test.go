package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/tlsutil"
)

// tlsBundle makes a CA with a server and a client certificate in dir.
func tlsBundle(t *testing.T, dir string) (server, client tlsutil.Config) {
	t.Helper()
	b, err := tlsutil.CreateBundle(dir, tlsutil.DefaultRegion, tlsutil.RoleServer, tlsutil.RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	return b[tlsutil.RoleServer], b[tlsutil.RoleClient]
}

// freePort returns a port free a moment ago on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startTLSPeer runs a standalone peer with a TLS port and returns it.
func startTLSPeer(t *testing.T, tcfg TLSConfig, mod func(*Config)) *Peer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.Store.EventLoops = 1
	cfg.Store.Logger = nil
	tcfg.Port = freePort(t)
	cfg.TLS = tcfg
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve() }()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		<-done
	})
	return p
}

// tlsClient is a go-redis client of the TLS port presenting cert (none
// when cert is nil) and trusting ca.
func tlsClient(t *testing.T, addr string, ca string, cert *tlsutil.Config, user, pass string) *redis.Client {
	t.Helper()
	pool := mustPool(t, ca)
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		// sent whatever CAs the server names (crypto/tls would otherwise
		// send no certificate rather than one of another CA)
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	c := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tc, Username: user, Password: pass,
		MaxRetries: -1, DisableIdentity: true, PoolSize: 1, DialTimeout: 5 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTLSClients(t *testing.T) {
	dir := t.TempDir()
	srvCfg, cliCfg := tlsBundle(t, dir)
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	_, otherCli := tlsBundle(t, other)
	base := TLSConfig{CertFile: srvCfg.CertFile, KeyFile: srvCfg.KeyFile, CAFile: srvCfg.CAFile}
	ctx := context.Background()
	tests := []struct {
		auth                      string
		noCert, other, withClient bool // ping succeeds without a certificate, with another CA's, with the CA's
	}{
		{"yes", false, false, true},
		{"optional", true, false, true},
		{"no", true, true, true},
	}
	for _, tt := range tests {
		t.Run("tls-auth-clients="+tt.auth, func(t *testing.T) {
			c := base
			c.AuthClients = tt.auth
			p := startTLSPeer(t, c, nil)
			addr := p.TLSAddr().String()
			for _, k := range []struct {
				name string
				cert *tlsutil.Config
				ok   bool
			}{{"no certificate", nil, tt.noCert}, {"another CA's certificate", &otherCli, tt.other}, {"the CA's certificate", &cliCfg, tt.withClient}} {
				err := tlsClient(t, addr, srvCfg.CAFile, k.cert, "", "").Ping(ctx).Err()
				if (err == nil) != k.ok {
					t.Errorf("%s: PING error %v, want success %v", k.name, err, k.ok)
				}
			}
			// the plain port still serves
			plain := redis.NewClient(&redis.Options{Addr: p.Addr().String(), MaxRetries: -1, DisableIdentity: true})
			defer plain.Close()
			if err := plain.Ping(ctx).Err(); err != nil {
				t.Errorf("plain port: %v", err)
			}
		})
	}
}

// ACL users over TLS, and a plain client speaking to the TLS port.
func TestTLSWithACLUsers(t *testing.T) {
	dir := t.TempDir()
	srvCfg, cliCfg := tlsBundle(t, dir)
	p := startTLSPeer(t, TLSConfig{CertFile: srvCfg.CertFile, KeyFile: srvCfg.KeyFile, CAFile: srvCfg.CAFile},
		func(c *Config) { c.Store.RequirePass = "adm" })
	ctx := context.Background()
	admin := tlsClient(t, p.TLSAddr().String(), srvCfg.CAFile, &cliCfg, "", "adm")
	if err := admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@read", "+@write", "-@dangerous").Err(); err != nil {
		t.Fatal(err)
	}
	app := tlsClient(t, p.TLSAddr().String(), srvCfg.CAFile, &cliCfg, "app", "apppw")
	if err := app.Set(ctx, "app:1", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := app.Set(ctx, "other", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("SET outside app:*: %v", err)
	}
	if who, _ := app.Do(ctx, "ACL", "WHOAMI").Text(); who != "" {
		t.Errorf("ACL WHOAMI allowed to a user without it: %q", who)
	}
	bad := tlsClient(t, p.TLSAddr().String(), srvCfg.CAFile, &cliCfg, "app", "wrong")
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("a wrong password: %v", err)
	}
	// plain RESP on the TLS port is not served
	nc, err := net.Dial("tcp", p.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("PING\r\n"))
	buf := make([]byte, 64)
	if n, _ := nc.Read(buf); strings.Contains(string(buf[:n]), "PONG") {
		t.Error("the TLS port answered plain text")
	}
}

// redis-cli --tls, the client the issue names.
func TestTLSRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	dir := t.TempDir()
	srvCfg, cliCfg := tlsBundle(t, dir)
	p := startTLSPeer(t, TLSConfig{CertFile: srvCfg.CertFile, KeyFile: srvCfg.KeyFile, CAFile: srvCfg.CAFile},
		func(c *Config) { c.Store.RequirePass = "pw" })
	port := strconv.Itoa(p.TLSAddr().(*net.TCPAddr).Port)
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, append([]string{"-h", "127.0.0.1", "-p", port, "--tls",
			"--cacert", srvCfg.CAFile, "--cert", cliCfg.CertFile, "--key", cliCfg.KeyFile, "--no-auth-warning"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run("--user", "default", "--pass", "pw", "SET", "k", "v"); err != nil || out != "OK" {
		t.Fatalf("redis-cli --tls SET: %q %v", out, err)
	}
	if out, _ := run("--pass", "pw", "GET", "k"); out != "v" {
		t.Errorf("redis-cli --tls GET: %q", out)
	}
	if out, _ := run("GET", "k"); !strings.Contains(out, "NOAUTH") {
		t.Errorf("redis-cli --tls without a password: %q", out)
	}
	// without a client certificate the handshake fails (tls-auth-clients yes)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, cli, "-h", "127.0.0.1", "-p", port, "--tls", "--cacert", srvCfg.CAFile, "PING").CombinedOutput()
	if strings.Contains(string(out), "PONG") {
		t.Errorf("redis-cli --tls without a certificate: %q", out)
	}
}

// A replica dials its primary's TLS port (tls-replication) and logs in
// as an ACL user that may only replicate (masteruser, masterauth).
func TestTLSReplicationWithMasterUser(t *testing.T) {
	dir := t.TempDir()
	srvCfg, cliCfg := tlsBundle(t, dir)
	files := TLSConfig{CertFile: srvCfg.CertFile, KeyFile: srvCfg.KeyFile, CAFile: srvCfg.CAFile}
	primary := startTLSPeer(t, files, func(c *Config) { c.Store.RequirePass = "adm" })
	ctx := context.Background()
	admin := tlsClient(t, primary.TLSAddr().String(), srvCfg.CAFile, &cliCfg, "", "adm")
	if err := admin.Do(ctx, "ACL", "SETUSER", "replica-user", "on", ">rpw", "+psync", "+replconf", "+ping").Err(); err != nil {
		t.Fatal(err)
	}
	rfiles := files
	rfiles.Replication = true
	replica := startTLSPeer(t, rfiles, func(c *Config) {
		c.Store.MasterUser, c.Store.MasterAuth = "replica-user", "rpw"
	})
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr().String(), MaxRetries: -1, DisableIdentity: true})
	defer rc.Close()
	host, port, _ := net.SplitHostPort(primary.TLSAddr().String())
	if err := rc.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Set(ctx, "k", "over tls", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := rc.Get(ctx, "k").Result()
		if err == nil && v == "over tls" {
			break
		}
		if err != nil && !errors.Is(err, redis.Nil) && !strings.Contains(err.Error(), "LOADING") {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			info, _ := rc.Info(ctx, "replication").Result()
			t.Fatalf("the replica never got the key over TLS: %v\n%s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// the user may replicate and nothing else
	ru := tlsClient(t, primary.TLSAddr().String(), srvCfg.CAFile, &cliCfg, "replica-user", "rpw")
	if err := ru.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("GET as the replication user: %v", err)
	}
}

func mustPool(t *testing.T, ca string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", ca)
	}
	return pool
}
