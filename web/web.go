// Package web is gantry's browser UI: plain HTML, CSS and JavaScript
// modules (no build step), embedded in the binary and served by every
// server at /ui/ and by a peer started with --http-addr (docs/ui.md).
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// FS is the UI's files, index.html at the root.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}

// Handler serves the UI under prefix ("/ui/"). Pages are routed in the
// browser (#/jobs ...), so only files are served; a missing one is 404.
// Responses say no-cache: the files change with the binary, and a stale
// module would not match the API it talks to.
func Handler(prefix string) http.Handler {
	fileServer := http.StripPrefix(prefix, http.FileServerFS(FS()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		fileServer.ServeHTTP(w, r)
	})
}
