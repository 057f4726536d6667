package agent

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// Service DNS: with DNSAddr set, the agent answers, over UDP and TCP,
//
//	<service>.service.gantry                A/AAAA and SRV: healthy instances
//	<tag>.<service>.service.gantry          the same, of instances with the tag
//	<service>.service.<namespace>.gantry    a service of another namespace
//	<alloc-id>.alloc.gantry                 A/AAAA: the targets of SRV answers
//
// from a copy of the servers' catalog (GET /v1/catalog, healthy instances
// only) it follows with blocking queries, so a lookup never waits on a
// server. Other names get NXDOMAIN inside "gantry." and REFUSED outside
// it: the agent does not recurse.

// DNS limits.
const (
	// DNSDomain is the zone the agent answers for.
	DNSDomain = "gantry."
	// MaxDNSInstances bounds the instances the agent's cache holds; a
	// catalog beyond it is cut (and the cut logged).
	MaxDNSInstances = 50000
	// MaxDNSAnswers bounds the records of one answer (then UDP truncation
	// applies on top).
	MaxDNSAnswers = 64
	// dnsTTL is 0, as Consul's default: clients ask again, and the agent's
	// answer is local and cheap.
	dnsTTL = 0
)

// dnsZone is one immutable view of the catalog, keyed by lower-case
// question names.
type dnsZone struct {
	names map[string][]dnsTarget // service names -> instances
	addrs map[string]net.IP      // <alloc-id>.alloc.gantry. -> address
}

type dnsTarget struct {
	target string // <alloc-id>.alloc.gantry.
	ip     net.IP
	port   uint16
}

// buildZone indexes the catalog's instances (at most MaxDNSInstances).
func buildZone(ins []structs.ServiceInstance) (*dnsZone, int) {
	z := &dnsZone{names: map[string][]dnsTarget{}, addrs: map[string]net.IP{}}
	dropped := 0
	for i, in := range ins {
		if i >= MaxDNSInstances {
			dropped = len(ins) - i
			break
		}
		ip := net.ParseIP(in.Address)
		if ip == nil || !in.Healthy {
			continue
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		t := dnsTarget{target: strings.ToLower(in.AllocID) + ".alloc." + DNSDomain, ip: ip, port: uint16(in.Port)}
		z.addrs[t.target] = ip
		base := strings.ToLower(in.Service) + ".service."
		if in.Namespace != structs.DefaultNamespace && in.Namespace != "" {
			base += strings.ToLower(in.Namespace) + "."
		}
		base += DNSDomain
		z.names[base] = append(z.names[base], t)
		for _, tag := range in.Tags {
			n := strings.ToLower(tag) + "." + base
			z.names[n] = append(z.names[n], t)
		}
	}
	return z, dropped
}

// answer builds the reply to a query from the zone, the instances
// rotated by rot so that clients taking the first record spread over
// them. It never panics on any message (FuzzDNSAnswer).
func (z *dnsZone) answer(req *dns.Msg, rot uint64) *dns.Msg {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeFormatError)
		if req.Opcode != dns.OpcodeQuery {
			m.Rcode = dns.RcodeNotImplemented
		}
		m.Question = nil
		return m
	}
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = false
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(DNSDomain, name) || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		m.Rcode = dns.RcodeRefused
		m.Authoritative = false
		return m
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
	}
	addrRR := func(h dns.RR_Header, ip net.IP) dns.RR {
		if ip.To4() != nil {
			h.Rrtype = dns.TypeA
			return &dns.A{Hdr: h, A: ip}
		}
		h.Rrtype = dns.TypeAAAA
		return &dns.AAAA{Hdr: h, AAAA: ip}
	}
	wantAddr := func(ip net.IP) bool {
		switch q.Qtype {
		case dns.TypeA:
			return ip.To4() != nil
		case dns.TypeAAAA:
			return ip.To4() == nil
		case dns.TypeANY:
			return true
		}
		return false
	}
	if ip, ok := z.addrs[name]; ok {
		if wantAddr(ip) {
			m.Answer = append(m.Answer, addrRR(hdr(0), ip))
		}
		return m
	}
	targets, ok := z.names[name]
	if !ok {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa()}
		return m
	}
	start := int(rot % uint64(len(targets)))
	for i := range targets {
		if len(m.Answer) >= MaxDNSAnswers {
			break
		}
		t := targets[(start+i)%len(targets)]
		switch {
		case q.Qtype == dns.TypeSRV:
			h := hdr(dns.TypeSRV)
			m.Answer = append(m.Answer, &dns.SRV{Hdr: h, Priority: 1, Weight: 1, Port: t.port, Target: t.target})
			if len(m.Extra) < MaxDNSAnswers {
				m.Extra = append(m.Extra, addrRR(dns.RR_Header{Name: t.target, Class: dns.ClassINET, Ttl: dnsTTL}, t.ip))
			}
		case wantAddr(t.ip):
			m.Answer = append(m.Answer, addrRR(hdr(0), t.ip))
		}
	}
	return m
}

func (z *dnsZone) soa() dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: DNSDomain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: dnsTTL},
		Ns: "ns." + DNSDomain, Mbox: "hostmaster." + DNSDomain, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 0}
}

// dnsServer serves the zone and follows the catalog.
type dnsServer struct {
	zone    atomic.Pointer[dnsZone]
	udp     *dns.Server
	tcp     *dns.Server
	addr    string // the UDP address it listens on
	queries atomic.Uint64

	readyOnce sync.Once
	ready     chan struct{} // closed after the first catalog arrived
}

func newDNSServer() *dnsServer {
	d := &dnsServer{ready: make(chan struct{})}
	d.zone.Store(&dnsZone{names: map[string][]dnsTarget{}, addrs: map[string]net.IP{}})
	return d
}

// ServeDNS implements dns.Handler.
func (d *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	n := d.queries.Add(1)
	m := d.zone.Load().answer(req, n)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := uint16(dns.MinMsgSize)
		if o := req.IsEdns0(); o != nil && o.UDPSize() > size {
			size = o.UDPSize()
		}
		m.Truncate(int(size))
	}
	_ = w.WriteMsg(m)
}

// listen opens the UDP and TCP sockets on addr (host:port; port 0 picks
// one, the same for both when it can).
func (d *dnsServer) listen(addr string) error {
	// With port 0 the kernel picks a free UDP port, whose TCP twin may be
	// taken by another process: pick again, a bounded number of times.
	_, port, _ := net.SplitHostPort(addr)
	tries := 1
	if port == "0" {
		tries = 16
	}
	var err error
	for range tries {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("dns listen udp %s: %w", addr, err)
		}
		laddr := pc.LocalAddr().String()
		var ln net.Listener
		ln, err = net.Listen("tcp", laddr)
		if err != nil {
			_ = pc.Close()
			err = fmt.Errorf("dns listen tcp %s: %w", laddr, err)
			continue
		}
		d.addr = laddr
		d.udp = &dns.Server{PacketConn: pc, Handler: d}
		d.tcp = &dns.Server{Listener: ln, Handler: d, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		return nil
	}
	return err
}

// serve runs both servers; it returns once they serve (so a shutdown
// cannot come before the start and leave one running), with a wait for
// their goroutines.
func (d *dnsServer) serve(log func(string, ...any)) (wait func()) {
	var wg sync.WaitGroup
	for _, s := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		failed := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				log("dns server", "err", err)
				close(failed)
			}
		}()
		select {
		case <-started:
		case <-failed:
		}
	}
	return wg.Wait
}

func (d *dnsServer) shutdown() {
	for _, s := range []*dns.Server{d.udp, d.tcp} {
		if s != nil {
			_ = s.Shutdown()
		}
	}
}

// follow keeps the zone in step with the servers' catalog until ctx ends.
func (a *Agent) followCatalog(ctx context.Context, d *dnsServer) {
	var index uint64
	b := newBackoff(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		ins, meta, err := a.client.Catalog(ctx, &api.QueryOptions{WaitIndex: index, WaitTime: a.cfg.WatchWait})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("following the service catalog for DNS", "err", err)
			if !sleepCtx(ctx, b.next()) {
				return
			}
			continue
		}
		b.reset()
		if meta.LastIndex < index {
			index = 0 // another server, or a restored state: start over
		} else {
			index = meta.LastIndex
		}
		z, dropped := buildZone(ins)
		if dropped > 0 {
			a.log.Warn("service catalog larger than the DNS cache; instances left out", "limit", MaxDNSInstances, "dropped", dropped)
		}
		d.zone.Store(z)
		d.readyOnce.Do(func() { close(d.ready) })
	}
}

// DNSAddr is the address the agent's DNS server listens on ("" when off).
func (a *Agent) DNSAddr() string {
	if a.dns == nil {
		return ""
	}
	return a.dns.addr
}

// startDNS opens the DNS server when configured; the loops it needs run
// under the agent's context and wait group.
func (a *Agent) startDNS(ctx context.Context) error {
	if a.cfg.DNSAddr == "" {
		return nil
	}
	d := newDNSServer()
	if err := d.listen(a.cfg.DNSAddr); err != nil {
		return err
	}
	a.dns = d
	wait := d.serve(func(msg string, args ...any) { a.log.Error(msg, args...) })
	a.goFunc(func() {
		<-ctx.Done()
		d.shutdown()
		wait()
	})
	a.goFunc(func() { a.followCatalog(ctx, d) })
	a.log.Info("agent DNS listening", "addr", d.addr)
	return nil
}

// addDNSEnv tells a task where the agent's DNS answers (GANTRY_DNS_ADDR).
func (a *Agent) addDNSEnv(env map[string]string) map[string]string {
	if a.dns == nil {
		return env
	}
	out := make(map[string]string, len(env)+1)
	for k, v := range env {
		out[k] = v
	}
	out["GANTRY_DNS_ADDR"] = a.dns.addr
	return out
}
