package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
)

// FuzzJobBody feeds arbitrary bodies through the strict decoder and the
// job rules the register endpoint applies: they may be refused, never
// crash, and whatever passes is a valid job.
func FuzzJobBody(f *testing.F) {
	for _, seed := range []string{
		`{"job":{"name":"web","driver":"mock","count":2,"resources":{"cpu":100,"memory_mb":64}}}`,
		`{"job":{"name":"x","driver":"exec","config":{"command":"/bin/true","args":["a"]},"resources":{"cpu":1,"memory_mb":1},
		  "constraints":[{"label":"zone","op":"in","values":["a","b"]},{"label":"attr.os","op":"regexp","value":"^lin"}],
		  "restart":{"attempts":1,"interval":"1m","delay":"1s"},"reschedule":{"attempts":0,"delay":5}}}`,
		`{"job":null}`, `{}`, `[]`, `{"job":{"count":-1}}`, `{"job":{"restart":{"delay":"forever"}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPut, "/v1/jobs", strings.NewReader(body))
		w := httptest.NewRecorder()
		var req api.JobRegisterRequest
		if err := decodeBody(w, r, &req); err != nil || req.Job == nil {
			return
		}
		job := req.Job.Copy()
		job.Canonicalize()
		if err := job.Validate(driver.Validators()); err != nil {
			return
		}
		if job.Name == "" || job.Resources.CPU <= 0 || job.Count < 0 {
			t.Fatalf("invalid job accepted: %+v", job)
		}
	})
}
