package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/api"
)

func TestListFiltersAndPages(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	for i := range 25 {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprintf("n%02d", i), 4000, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DrainNode(bg, "n03", true); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "web-2", "db"} {
		if _, err := c.RegisterJob(bg, mockJob(name, 2)); err != nil {
			t.Fatal(err)
		}
	}
	waitLive(t, c, "db", 2)
	if _, err := c.StopJob(bg, "web-2", false); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string, []map[string]any) {
		t.Helper()
		resp, err := http.Get("http://" + s.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rows []map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &rows)
		return resp.StatusCode, resp.Header.Get("X-Gantry-Total"), rows
	}
	tests := []struct {
		path  string
		total string
		ids   []string
	}{
		{"/v1/nodes?offset=10&limit=3", "25", []string{"n10", "n11", "n12"}},
		{"/v1/nodes?prefix=node-n2", "5", []string{"n20", "n21", "n22", "n23", "n24"}},
		{"/v1/nodes?status=draining", "1", []string{"n03"}},
		{"/v1/nodes?offset=30&limit=5", "25", []string{}},
		{"/v1/jobs?prefix=web", "2", []string{"web", "web-2"}},
		{"/v1/jobs?status=dead", "1", []string{"web-2"}},
		{"/v1/jobs?status=pending,dead&limit=1", "3", []string{"db"}},
		{"/v1/allocations?prefix=db[", "2", nil},
	}
	for _, tc := range tests {
		code, total, rows := get(tc.path)
		if code != http.StatusOK || total != tc.total {
			t.Errorf("%s: %d, total %q; want 200, total %s", tc.path, code, total, tc.total)
			continue
		}
		if tc.ids == nil {
			continue
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, fmt.Sprint(r["id"]))
		}
		if strings.Join(ids, ",") != strings.Join(tc.ids, ",") {
			t.Errorf("%s: %v, want %v", tc.path, ids, tc.ids)
		}
	}
	for _, bad := range []string{"/v1/nodes?limit=0", "/v1/jobs?offset=-1", "/v1/allocations?limit=10001"} {
		if code, _, _ := get(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}

	// Node usage in columns.
	resp, err := http.Get("http://" + s.HTTPAddr() + "/v1/nodes/usage")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u NodeUsage
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		t.Fatal(err)
	}
	var allocs, cpu int64
	for i := range u.IDs {
		allocs += int64(u.Allocs[i])
		cpu += u.CPUUsed[i]
		if u.IDs[i] == "n03" && u.Status[i] != "draining" {
			t.Errorf("n03 is %s, want draining", u.Status[i])
		}
	}
	if len(u.IDs) != 25 || len(u.Names) != 25 || len(u.CPU) != 25 || allocs != 4 || cpu != 4*500 {
		t.Errorf("usage of %d nodes, %d live allocations using %d m; want 25 nodes, 4 allocations, 2000 m", len(u.IDs), allocs, cpu)
	}
}

func TestJobParseAndUIFiles(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	post := func(body string) (int, string) {
		resp, err := http.Post("http://"+s.HTTPAddr()+"/v1/jobs/parse", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	spec, _ := json.Marshal(JobParseRequest{JobSpec: "name: web\ncount: 3\nresources: {cpu: 100, memory_mb: 64}\ndriver: mock\n"})
	code, body := post(string(spec))
	var job api.Job
	if code != http.StatusOK || json.Unmarshal([]byte(body), &job) != nil || job.ID != "web" || job.Count != 3 || job.Type != "service" {
		t.Fatalf("parse: %d %s", code, body)
	}
	spec, _ = json.Marshal(JobParseRequest{JobSpec: "name: web\ncount: -1\ndriver: mock\n"})
	if code, body := post(string(spec)); code != http.StatusBadRequest || !strings.Contains(body, "count") || !strings.Contains(body, "line 2") {
		t.Fatalf("bad document: %d %s", code, body)
	}

	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, ctype string
		code        int
	}{
		{"/ui/", "text/html", 200},
		{"/ui/app.css", "text/css", 200},
		{"/ui/js/main.js", "text/javascript", 200},
		{"/ui/js/nothing.js", "", 404},
		{"/", "", http.StatusFound},
	} {
		resp, err := hc.Get("http://" + s.HTTPAddr() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.code, tc.ctype)
		}
		if tc.code == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: no content security policy", tc.path)
		}
	}
}
