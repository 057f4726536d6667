package backup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func write(t *testing.T, h Header, records ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if err := w.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	recs := []any{map[string]string{"a": "1"}, map[string]string{"b": strings.Repeat("x", 200<<10)}, []int{3}}
	b := write(t, Header{Index: 7, Time: 9}, recs...)
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h != (Header{Format: Format, Index: 7, Time: 9}) {
		t.Fatalf("header %+v", h)
	}
	var got []string
	for {
		line, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(line))
	}
	if len(got) != len(recs) || got[0] != `{"a":"1"}` || got[2] != `[3]` || r.Records() != 3 {
		t.Fatalf("records %d (%d counted), first %q", len(got), r.Records(), got[0])
	}
	off, n := r.Span()
	if want := strings.Join(got, "\n") + "\n"; string(b[off:off+n]) != want {
		t.Fatalf("span %d+%d is not the records", off, n)
	}
	// An empty backup is a header and a trailer.
	if _, err := Verify(bytes.NewReader(write(t, Header{}))); err != nil {
		t.Fatalf("empty backup: %v", err)
	}
}

func TestRefused(t *testing.T) {
	b := write(t, Header{Index: 1}, map[string]int{"a": 1}, map[string]int{"b": 2})
	header := b[:bytes.IndexByte(b, '\n')+1]
	for _, tc := range []struct {
		name, in, says string
	}{
		{"empty", "", "empty"},
		{"header only", string(header), "without its trailer"},
		{"header cut", string(header[:10]), "inside its header line"},
		{"record cut", string(b[:len(header)+5]), "ends inside line 2"},
		{"trailer cut", string(b[:len(b)-3]), "ends inside line 4"},
		{"no newline at all", strings.Repeat("x", MaxHeader+1), "not a gantry snapshot"},
		{"not JSON", "PK\x03\x04 zip\n", "not a gantry snapshot"},
		{"format 1", `{"gantry_snapshot":1,"index":3}` + "\n", "format 1"},
		{"format 0", `{"gantry_snapshot":0}` + "\n", "unknown snapshot format 0"},
		{"future format", `{"gantry_snapshot":9}` + "\n", "newer"},
		{"bad trailer", string(header) + `{"gantry_snapshot_end":{"records":"x"}}` + "\n", "unreadable trailer"},
		{"trailer with extra field", string(header) + `{"gantry_snapshot_end":{"records":0,"crc32c":"0","x":1}}` + "\n", "unreadable trailer"},
		{"wrong count", string(bytes.Replace(b, []byte(`"records":2`), []byte(`"records":3`), 1)), "counts 3 records but the file holds 2"},
		{"wrong checksum", string(bytes.Replace(b, []byte(`{"a":1}`), []byte(`{"a":2}`), 1)), "checksum mismatch"},
		{"after the trailer", string(b) + "x", "after the trailer"},
	} {
		_, err := Verify(strings.NewReader(tc.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want ErrInvalid saying %q", tc.name, err, tc.says)
		}
	}
}

// TestReaderStops: after an error or the end, Next keeps returning it.
func TestReaderStops(t *testing.T) {
	b := write(t, Header{}, 1)
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, _ = r.Next()
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %v", err)
	}
}
