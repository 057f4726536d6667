package resp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestParseLimits: a connection's limits are checked at the header, before
// the payload arrives.
func TestParseLimits(t *testing.T) {
	unauth := Limits{Unauthenticated: true}
	for _, tt := range []struct {
		in  string
		lim Limits
		err string
	}{
		{"*1\r\n$536870000\r\n", unauth, "Protocol error: unauthenticated bulk length"},
		{"*11\r\n", unauth, "Protocol error: unauthenticated multibulk length"},
		{"*10\r\n$16384\r\n", unauth, ""},
		{"*1\r\n$16385\r\n", unauth, "Protocol error: unauthenticated bulk length"},
		{"*1\r\n$1048577\r\n", Limits{MaxBulk: 1 << 20}, "Protocol error: invalid bulk length"},
		{"*1\r\n$1048576\r\n", Limits{MaxBulk: 1 << 20}, ""},
		{"*1\r\n$536870913\r\n", Limits{}, "Protocol error: invalid bulk length"},
		{"*1\r\n$-2\r\n", unauth, "Protocol error: invalid bulk length"},
	} {
		_, n, err := ParseCommandLimits([]byte(tt.in), nil, tt.lim)
		var p Partial
		_, serr := p.Scan([]byte(tt.in), tt.lim)
		for _, e := range []error{err, serr} {
			if tt.err == "" && e != nil || tt.err != "" && (e == nil || e.Error() != tt.err) {
				t.Errorf("%q %+v: err %v, want %q", tt.in, tt.lim, e, tt.err)
			}
		}
		if n != 0 {
			t.Errorf("%q: n %d for an incomplete command", tt.in, n)
		}
	}
}

// TestPartialScan: fed a command in random pieces, Scan says it is
// complete exactly when all its bytes are there, Need never asks for more
// than the command's length, and the verdict on malformed input is
// ParseCommand's.
func TestPartialScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cmds := []string{
		"PING\r\n",
		"SET k v\r\n",
		"*0\r\n",
		"*1\r\n$0\r\n\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + "100000\r\n" + strings.Repeat("x", 100000) + "\r\n",
		"*1\r\n$3\r\nabcd\r\n",
		"*2\r\n:1\r\n",
	}
	var many bytes.Buffer
	many.WriteString("*5001\r\n$4\r\nNOPE\r\n")
	for i := 0; i < 5000; i++ {
		many.WriteString("$1\r\nx\r\n")
	}
	cmds = append(cmds, many.String())
	for _, cmd := range cmds {
		_, full, wantErr := ParseCommand([]byte(cmd), nil)
		for trial := 0; trial < 20; trial++ {
			var p Partial
			var gotErr error
			complete := false
			for have := 0; have < len(cmd) && !complete && gotErr == nil; {
				have = min(len(cmd), have+1+rng.IntN(len(cmd)/5+2))
				if p.Active() && have < p.Need() {
					continue
				}
				if p.Size() > len(cmd) && wantErr == nil {
					t.Fatalf("%.20q: size %d of a %d byte command", cmd, p.Size(), len(cmd))
				}
				complete, gotErr = p.Scan([]byte(cmd[:have]), Limits{})
				if complete && have < full {
					t.Fatalf("%.20q: complete at %d of %d bytes", cmd, have, full)
				}
			}
			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("%.20q: scan error %v, parse error %v", cmd, gotErr, wantErr)
			}
			var pe *ProtocolError
			if gotErr != nil && !errors.As(gotErr, &pe) {
				t.Fatalf("%.20q: %T", cmd, gotErr)
			}
			if wantErr == nil && !complete {
				t.Fatalf("%.20q: not complete with all its bytes", cmd)
			}
		}
	}
}
