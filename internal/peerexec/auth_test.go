package peerexec

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakeAuth struct {
	required bool
	users    map[string]string
}

func (a *fakeAuth) AuthRequired() bool { return a.required }
func (a *fakeAuth) CheckUser(user, pass string) bool {
	p, ok := a.users[user]
	return ok && p == pass
}

func TestRequireUser(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	auth := &fakeAuth{required: true, users: map[string]string{"default": "pw", "ops": "secret"}}
	cases := []struct {
		name       string
		auth       Authenticator
		user, pass string
		basic      bool
		code       int
		msg        string
	}{
		{"no authenticator", nil, "", "", false, 200, ""},
		{"auth not required", &fakeAuth{}, "", "", false, 200, ""},
		{"missing", auth, "", "", false, 401, "authentication required"},
		{"wrong password", auth, "ops", "nope", true, 401, "authentication failed"},
		{"unknown user", auth, "eve", "secret", true, 401, "authentication failed"},
		{"user", auth, "ops", "secret", true, 200, ""},
		{"requirepass as default", auth, "", "pw", true, 200, ""},
		{"default named", auth, "default", "pw", true, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
			if c.basic {
				req.SetBasicAuth(c.user, c.pass)
			}
			rec := httptest.NewRecorder()
			requireUser(c.auth, ok).ServeHTTP(rec, req)
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
				t.Fatalf("%d %q, want %d %q", rec.Code, rec.Body.String(), c.code, c.msg)
			}
			if c.code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Fatal("401 without a Basic challenge")
			}
		})
	}
}
