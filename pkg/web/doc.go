// Package web owns the dashboard: the static page, script and style
// embedded in the binary and served by every replica at / (no CDN, no
// internet access). The page reads and acts only through the REST API of
// the replica that served it, with the token the user signs in with.
package web
