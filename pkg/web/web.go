package web

import (
	"embed"
	"net/http"
	"path"
)

//go:embed static
var static embed.FS

// contentType is the type of the files the dashboard is made of.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return ""
}

// Serve answers the dashboard's file name ("index.html", "app.js", …);
// false, with nothing written, for any other. The page may run only its
// own script and talk only to the replica that served it.
func Serve(w http.ResponseWriter, name string) bool {
	ct := contentType(name)
	if ct == "" || path.Base(name) != name {
		return false
	}
	data, err := static.ReadFile("static/" + name)
	if err != nil {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(data)
	return true
}
