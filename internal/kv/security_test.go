package kv

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// nonLoopbackIP returns an IPv4 address of this host that is not
// loopback, to connect "from another host" to a server bound to all.
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this host: protected mode cannot be tested")
	return ""
}

// startOn serves a new server on ln (like startServer) and returns its
// port.
func startOn(t *testing.T, mod func(*Config)) (*Server, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Logger = testLogger(t)
	cfg.ActiveExpireHz = 0
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return srv, port
}

// pingFrom sends PING to host:port and returns the first reply line.
func pingFrom(t *testing.T, host, port string) string {
	t.Helper()
	nc, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		return "write: " + err.Error()
	}
	line, _ := bufio.NewReaderSize(io.LimitReader(nc, 4096), 4096).ReadString('\n')
	return strings.TrimSuffix(line, "\r\n")
}

func TestProtectedMode(t *testing.T) {
	ip := nonLoopbackIP(t)
	denied := strings.TrimSuffix(protectedDenied, "\r\n")
	tests := []struct {
		name      string
		protected bool
		pass      string
		remote    string // reply to a client from ip
	}{
		{"on, no password", true, "", denied},
		{"on, a password", true, "pw", "-NOAUTH Authentication required."},
		{"off", false, "", "+PONG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, port := startOn(t, func(c *Config) { c.ProtectedMode, c.RequirePass = tt.protected, tt.pass })
			if got := pingFrom(t, ip, port); got != tt.remote {
				t.Errorf("from %s: %.80q, want %.80q", ip, got, tt.remote)
			}
			want := "+PONG"
			if tt.pass != "" {
				want = "-NOAUTH Authentication required."
			}
			if got := pingFrom(t, "127.0.0.1", port); got != want {
				t.Errorf("from loopback: %q, want %q", got, want)
			}
			_ = srv
		})
	}
	// CONFIG SET protected-mode, and a password set later, open the door
	srv, port := startOn(t, func(c *Config) { c.ProtectedMode = true })
	if got := pingFrom(t, ip, port); got != denied {
		t.Fatalf("from %s: %.60q", ip, got)
	}
	local := localClient(t, port)
	if err := local.Do(context.Background(), "CONFIG", "SET", "protected-mode", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if got := pingFrom(t, ip, port); got != "+PONG" {
		t.Errorf("after protected-mode no: %q", got)
	}
	local.Do(context.Background(), "CONFIG", "SET", "protected-mode", "yes")
	if err := local.Do(context.Background(), "ACL", "SETUSER", "default", ">pw").Err(); err != nil {
		t.Fatal(err)
	}
	if got := pingFrom(t, ip, port); got != "-NOAUTH Authentication required." {
		t.Errorf("with a password for the default user: %q", got)
	}
	if srv.protectedRefused.Load() != 1 {
		t.Errorf("%d refusals counted, want 1", srv.protectedRefused.Load())
	}
}

func localClient(t *testing.T, port string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Protocol: 2, DisableIdentity: true,
		MaxRetries: -1, PoolSize: 1, ReadTimeout: 5 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

var _ = tls.VersionTLS12
