package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/server"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// controlPlane is the server under test.
type controlPlane interface {
	// Addr is the API's base URL.
	Addr() string
	// Usage returns CPU seconds used so far and the peak RSS in bytes.
	// Scope says what they cover ("server process" or "whole process").
	Usage() (cpuSeconds float64, peakRSS int64, scope string, err error)
	// PprofAddr is host:port of net/http/pprof, or "" when not served.
	PprofAddr() string
	Stop() error
}

// serverSettings are the knobs the bench sets on the server.
type serverSettings struct {
	dataDir      string
	heartbeatTTL time.Duration
	sampleSize   int // 0 = the server's default
	seed         int64
	scheduler    string         // "" = the server's default architecture
	schedulers   int            // shared-state workers; 0 = the server's default
	logStore     string         // Raft log store; "" = the server's default
	tls          tlsutil.Config // the server's TLS; off unless --tls
}

// inProcess runs the server in this process (tests, `go test -bench`).
type inProcess struct {
	srv    *server.Server
	scheme string
}

func startInProcess(s serverSettings, logger *slog.Logger) (*inProcess, error) {
	cfg := server.DefaultConfig()
	cfg.DataDir = s.dataDir
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NodeName = "bench"
	cfg.HeartbeatTTL = s.heartbeatTTL
	if s.sampleSize > 0 {
		cfg.Scheduler.SampleSize = s.sampleSize
	}
	cfg.Scheduler.Seed = s.seed
	if s.scheduler != "" {
		cfg.Scheduler.Architecture = s.scheduler
	}
	if s.schedulers > 0 {
		cfg.Scheduler.SharedState.Workers = s.schedulers
	}
	cfg.RaftLogStore = s.logStore
	cfg.RaftTimeout = 200 * time.Millisecond
	cfg.TLS = s.tls
	cfg.Logger = logger
	srv, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return &inProcess{srv: srv, scheme: scheme(s.tls)}, nil
}

// scheme is the API's URL scheme.
func scheme(c tlsutil.Config) string {
	if c.Enabled() {
		return "https://"
	}
	return "http://"
}

func (p *inProcess) Addr() string      { return p.scheme + p.srv.HTTPAddr() }
func (p *inProcess) PprofAddr() string { return "" }
func (p *inProcess) Stop() error       { return p.srv.Shutdown() }

func (p *inProcess) Usage() (float64, int64, string, error) {
	cpu, rss, err := selfUsage()
	return cpu, rss, "whole process (server and simulated nodes)", err
}

// selfUsage returns this process's CPU seconds (user and system) and peak
// RSS in bytes.
func selfUsage() (float64, int64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, fmt.Errorf("getrusage: %w", err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	// Linux reports ru_maxrss in KiB.
	return cpu, ru.Maxrss * 1024, nil
}

// childProcess runs `gantry server` as a separate process, so its CPU and
// memory are measured apart from the simulated nodes.
type childProcess struct {
	cmd     *exec.Cmd
	scheme  string
	addr    string
	pprof   string
	logPath string
	done    chan error
	machine *machineGroup // its cgroup with --machine-cpus, else nil
}

// startChild starts exe (the gantry binary) as a server on free loopback
// ports; its log goes to <dataDir>/server.log.
func startChild(exe string, s serverSettings, pprof bool) (*childProcess, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	c := &childProcess{addr: "127.0.0.1:" + ports[0], done: make(chan error, 1)}
	args := []string{"server", "--data-dir", filepath.Join(s.dataDir, "server"),
		"--http-addr", c.addr, "--raft-addr", "127.0.0.1:" + ports[1], "--name", "bench",
		"--heartbeat-ttl", s.heartbeatTTL.String(), "--log-level", "warn"}
	if s.sampleSize > 0 {
		args = append(args, "--sample-size", strconv.Itoa(s.sampleSize))
	}
	if s.scheduler != "" {
		args = append(args, "--scheduler", s.scheduler)
	}
	if s.schedulers > 0 {
		args = append(args, "--schedulers", strconv.Itoa(s.schedulers))
	}
	if s.logStore != "" {
		args = append(args, "--raft-log-store", s.logStore)
	}
	if s.tls.Enabled() {
		args = append(args, "--ca-file", s.tls.CAFile, "--cert-file", s.tls.CertFile, "--key-file", s.tls.KeyFile)
	}
	c.scheme = scheme(s.tls)
	if pprof {
		c.pprof = "127.0.0.1:" + ports[2]
		args = append(args, "--pprof", c.pprof)
	}
	c.logPath = filepath.Join(s.dataDir, "server.log")
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	c.cmd = exec.Command(exe, args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C of the bench reaches it only
	// through Stop; killed if the bench dies without stopping it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s server: %w", exe, err)
	}
	go func() {
		c.done <- c.cmd.Wait()
		logf.Close()
	}()
	return c, nil
}

func (c *childProcess) Addr() string      { return c.scheme + c.addr }
func (c *childProcess) PprofAddr() string { return c.pprof }

// Stop sends SIGTERM and waits (then SIGKILL after 30s).
func (c *childProcess) Stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("server exited: %w (log: %s)", err, c.logPath)
		}
		return err
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		err := <-c.done
		return fmt.Errorf("server did not stop within 30s; killed (%w; log: %s)", err, c.logPath)
	}
}

// Usage reads /proc/<pid>/stat (utime+stime) and VmHWM of /proc/<pid>/status.
func (c *childProcess) Usage() (float64, int64, string, error) {
	pid := c.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", fmt.Errorf("server cpu: %w", err)
	}
	// Fields after the command name, which is in parentheses.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, "", fmt.Errorf("server cpu: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	const clkTck = 100 // USER_HZ on Linux
	rss, err := procStatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:")
	if err != nil {
		return 0, 0, "", err
	}
	return (ut + st) / clkTck, rss * 1024, "server process", nil
}

func procStatusKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("server memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("server memory: %s not in %s", key, path)
}

func freePorts(n int) ([]string, error) {
	var ports []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, p)
	}
	return ports, nil
}

// waitLeader polls the API until the server has elected itself.
func waitLeader(ctx context.Context, hc *http.Client, addr string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("server exited before it was ready: %w", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", addr+"/v1/status/leader", nil)
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && !strings.Contains(string(b), `"leader":""`) {
				return nil
			}
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return errors.New("server did not become leader within 60s")
}

// fetchProfile saves a pprof profile from the server (e.g. "profile?seconds=20"
// or "allocs") to path.
func fetchProfile(ctx context.Context, pprofAddr, what, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+pprofAddr+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("pprof %s: HTTP %d", what, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("pprof %s: %w", what, err)
	}
	return f.Close()
}
