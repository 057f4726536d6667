package agent

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gantry-project/gantry/internal/structs"
)

func testInstances() []structs.ServiceInstance {
	return []structs.ServiceInstance{
		{Service: "web", Namespace: "default", AllocID: "00000000-0000-4000-8000-000000000001", Address: "10.0.0.1", Port: 20001, Tags: []string{"v1"}, Healthy: true},
		{Service: "web", Namespace: "default", AllocID: "00000000-0000-4000-8000-000000000002", Address: "10.0.0.2", Port: 20002, Healthy: true},
		{Service: "web", Namespace: "default", AllocID: "00000000-0000-4000-8000-000000000003", Address: "10.0.0.3", Port: 20003, Healthy: false},
		{Service: "db", Namespace: "prod", AllocID: "00000000-0000-4000-8000-000000000004", Address: "fd00::4", Port: 5432, Healthy: true},
		{Service: "bad", Namespace: "default", AllocID: "x", Address: "not an ip", Healthy: true},
	}
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestDNSAnswer(t *testing.T) {
	z, dropped := buildZone(testInstances())
	if dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	cases := []struct {
		name   string
		q      *dns.Msg
		rcode  int
		answer []string // A addresses, or SRV "port target"
		extra  int
	}{
		{"A healthy only", query("web.service.gantry.", dns.TypeA), dns.RcodeSuccess, []string{"10.0.0.1", "10.0.0.2"}, 0},
		{"case-insensitive", query("WEB.Service.Gantry.", dns.TypeA), dns.RcodeSuccess, []string{"10.0.0.1", "10.0.0.2"}, 0},
		{"SRV with targets", query("web.service.gantry.", dns.TypeSRV), dns.RcodeSuccess,
			[]string{"20001 00000000-0000-4000-8000-000000000001.alloc.gantry.", "20002 00000000-0000-4000-8000-000000000002.alloc.gantry."}, 2},
		{"tag", query("v1.web.service.gantry.", dns.TypeA), dns.RcodeSuccess, []string{"10.0.0.1"}, 0},
		{"namespace, AAAA", query("db.service.prod.gantry.", dns.TypeAAAA), dns.RcodeSuccess, []string{"fd00::4"}, 0},
		{"A of an IPv6-only service is empty", query("db.service.prod.gantry.", dns.TypeA), dns.RcodeSuccess, nil, 0},
		{"SRV target resolves", query("00000000-0000-4000-8000-000000000002.alloc.gantry.", dns.TypeA), dns.RcodeSuccess, []string{"10.0.0.2"}, 0},
		{"unhealthy target unknown", query("00000000-0000-4000-8000-000000000003.alloc.gantry.", dns.TypeA), dns.RcodeNameError, nil, 0},
		{"unknown service", query("nope.service.gantry.", dns.TypeA), dns.RcodeNameError, nil, 0},
		{"outside the zone", query("example.com.", dns.TypeA), dns.RcodeRefused, nil, 0},
		{"no question", &dns.Msg{}, dns.RcodeFormatError, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := z.answer(tc.q, 0)
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			var got []string
			for _, rr := range m.Answer {
				switch r := rr.(type) {
				case *dns.A:
					got = append(got, r.A.String())
				case *dns.AAAA:
					got = append(got, r.AAAA.String())
				case *dns.SRV:
					got = append(got, strconv.Itoa(int(r.Port))+" "+r.Target)
				}
			}
			if len(got) != len(tc.answer) {
				t.Fatalf("answer %v, want %v", got, tc.answer)
			}
			for i := range got {
				if got[i] != tc.answer[i] {
					t.Fatalf("answer %v, want %v", got, tc.answer)
				}
			}
			if len(m.Extra) != tc.extra {
				t.Fatalf("%d additional records, want %d", len(m.Extra), tc.extra)
			}
			if _, err := m.Pack(); err != nil {
				t.Fatalf("answer does not pack: %v", err)
			}
		})
	}
}

func TestDNSLimits(t *testing.T) {
	var ins []structs.ServiceInstance
	for i := range MaxDNSInstances + 5 {
		ins = append(ins, structs.ServiceInstance{Service: "big", Namespace: "default", AllocID: strconv.Itoa(i),
			Address: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), Healthy: true})
	}
	z, dropped := buildZone(ins)
	if dropped != 5 {
		t.Fatalf("dropped %d, want 5", dropped)
	}
	m := z.answer(query("big.service.gantry.", dns.TypeSRV), 7)
	if len(m.Answer) != MaxDNSAnswers || len(m.Extra) != MaxDNSAnswers {
		t.Fatalf("%d answers, %d extra; want %d each", len(m.Answer), len(m.Extra), MaxDNSAnswers)
	}
	// Answers rotate, so clients taking the first record spread.
	if first := m.Answer[0].(*dns.SRV).Target; first != "7.alloc.gantry." {
		t.Fatalf("rotated answer starts at %s, want 7.alloc.gantry.", first)
	}
}

// FuzzDNSAnswer checks that no query, however malformed, panics the
// answer or yields one that does not pack.
func FuzzDNSAnswer(f *testing.F) {
	for _, q := range []*dns.Msg{query("web.service.gantry.", dns.TypeA), query("v1.web.service.gantry.", dns.TypeSRV),
		query("db.service.prod.gantry.", dns.TypeANY), query("gantry.", dns.TypeSOA), query(".", dns.TypeA), {}} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 1, 2})
	z, _ := buildZone(testInstances())
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return // the server library answers these itself
		}
		m := z.answer(req, uint64(len(b)))
		if _, err := m.Pack(); err != nil {
			t.Fatalf("answer does not pack: %v", err)
		}
	})
}

// catalogServer serves GET /v1/catalog as a blocking query.
type catalogServer struct {
	mu      sync.Mutex
	index   uint64
	ins     []structs.ServiceInstance
	changed chan struct{}
}

func (c *catalogServer) set(ins []structs.ServiceInstance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.ins = ins
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *catalogServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	min, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	for {
		c.mu.Lock()
		idx, ins, ch := c.index, c.ins, c.changed
		c.mu.Unlock()
		if idx > min {
			writeJSON(w, 200, idx, ins)
			return
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		case <-time.After(2 * time.Second):
			writeJSON(w, 200, idx, ins)
			return
		}
	}
}

func TestDNSServerFollowsCatalog(t *testing.T) {
	fs := newFakeServer(t)
	cat := fs.catalog
	cat.set(testInstances()[:1])
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.DNSAddr = "127.0.0.1:0" })
	addr := a.DNSAddr()
	if addr == "" {
		t.Fatal("no DNS address")
	}
	c := &dns.Client{Timeout: time.Second}
	lookup := func(name string, qtype uint16) []dns.RR {
		m, _, err := c.Exchange(query(name, qtype), addr)
		if err != nil {
			t.Fatal(err)
		}
		return m.Answer
	}
	eventually(t, "the first catalog", func() bool { return len(lookup("web.service.gantry.", dns.TypeA)) == 1 })
	cat.set(testInstances())
	eventually(t, "the updated catalog", func() bool { return len(lookup("web.service.gantry.", dns.TypeA)) == 2 })
	tcp := &dns.Client{Net: "tcp", Timeout: time.Second}
	m, _, err := tcp.Exchange(query("web.service.gantry.", dns.TypeSRV), addr)
	if err != nil || len(m.Answer) != 2 {
		t.Fatalf("SRV over TCP: %v, %v", m, err)
	}
	// Tasks are told where to ask.
	env := a.addDNSEnv(map[string]string{"A": "1"})
	if env["GANTRY_DNS_ADDR"] != addr || env["A"] != "1" {
		t.Fatalf("env = %v", env)
	}
}

// BenchmarkDNSQueries measures queries answered by the agent's DNS server
// over loopback UDP, a zone of 50 healthy instances, A and SRV questions
// (SRV, the largest answers); queries/s is reported. The floor-SRV case is
// the same-run reference: a bare miekg/dns server on the same kind of
// socket replying a prepared copy of the same SRV answer, so what the
// zone lookup and answer building cost shows as the ratio to it. Bounded
// by b.N.
//
//	go test -run '^$' -bench BenchmarkDNSQueries -benchtime 3s ./internal/agent/
func BenchmarkDNSQueries(b *testing.B) {
	var ins []structs.ServiceInstance
	for i := range 50 {
		ins = append(ins, structs.ServiceInstance{Service: "web", Namespace: "default", AllocID: "alloc-" + strconv.Itoa(i),
			Address: "127.0.0.1", Port: 20000 + i, Healthy: true})
	}
	d := newDNSServer()
	z, _ := buildZone(ins)
	d.zone.Store(z)
	if err := d.listen("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	wait := d.serve(func(string, ...any) {})
	defer func() { d.shutdown(); wait() }()
	for _, qt := range []struct {
		name  string
		qtype uint16
	}{{"A", dns.TypeA}, {"SRV", dns.TypeSRV}} {
		b.Run(qt.name, func(b *testing.B) { benchQueries(b, d.addr, qt.qtype) })
	}

	// The reference: the same SRV answer, prepared once, from a handler
	// that only sets the query's ID on a copy of it.
	q := query("web.service.gantry.", dns.TypeSRV)
	q.SetEdns0(4096, false)
	prepared := z.answer(q, 0)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	started := make(chan struct{})
	floor := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := *prepared // the slices are shared, read only
			m.Id = r.Id
			m.Truncate(4096) // as the agent does for this client's EDNS size
			_ = w.WriteMsg(&m)
		})}
	served := make(chan struct{})
	go func() { defer close(served); _ = floor.ActivateAndServe() }()
	<-started
	defer func() { _ = floor.Shutdown(); <-served }()
	b.Run("floor-SRV", func(b *testing.B) { benchQueries(b, pc.LocalAddr().String(), dns.TypeSRV) })
}

// benchQueries sends web.service.gantry questions of qtype to addr from 8
// clients per CPU, each with one query in flight, and reports queries/s.
func benchQueries(b *testing.B, addr string, qtype uint16) {
	start := time.Now()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c := &dns.Client{Timeout: 2 * time.Second, UDPSize: 4096}
		conn, err := c.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		m := query("web.service.gantry.", qtype)
		m.SetEdns0(4096, false)
		for pb.Next() {
			if r, _, err := c.ExchangeWithConn(m, conn); err != nil || len(r.Answer) == 0 {
				b.Errorf("query: %v %v", r, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkDNSAnswer measures building one answer (no network).
func BenchmarkDNSAnswer(b *testing.B) {
	var ins []structs.ServiceInstance
	for i := range 50 {
		ins = append(ins, structs.ServiceInstance{Service: "web", Namespace: "default", AllocID: "alloc-" + strconv.Itoa(i),
			Address: "127.0.0.1", Port: 20000 + i, Healthy: true})
	}
	z, _ := buildZone(ins)
	q := query("web.service.gantry.", dns.TypeSRV)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if m := z.answer(q, uint64(i)); len(m.Answer) != 50 {
			b.Fatal(len(m.Answer))
		}
	}
}
