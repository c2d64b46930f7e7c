// Package js hands Go programs the JavaScript client's ES modules (src/)
// and the demo page (demo/), embedded, for serving beside an edge: the
// edge's --demo serves them, and so does examples/browser/serve. The
// modules are the files npm packs, not a copy.
package js

import (
	"embed"
	"io/fs"
	"net/http"
)

// files are the library's modules and the demo page. Read-only.
//
//go:embed src/*.js demo
var files embed.FS

// Library serves the library's modules at its root (index.js, frames.js
// and the modules they import), as JavaScript; mount it under a prefix
// with http.StripPrefix.
func Library() http.Handler { return noCache(http.FileServerFS(sub("src"))) }

// Demo serves the demo page at /demo/ and the library it imports at
// /demo/lib/: the mux the edge's --demo gives edge.Options.Pages. Any
// other path has no pattern in it (the edge refuses such requests as it
// always does). The page connects to the WebSocket of its own origin.
func Demo() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /demo/lib/", http.StripPrefix("/demo/lib", Library()))
	mux.Handle("GET /demo/", http.StripPrefix("/demo", noCache(http.FileServerFS(sub("demo")))))
	return mux
}

// sub is the embedded directory dir (fs.Sub fails only on a name that is
// not a valid path, and dir is a constant one).
func sub(dir string) fs.FS {
	f, _ := fs.Sub(files, dir)
	return f
}

// noCache has browsers check again before they use a copy: the files
// change with the binary, which embedded files give no date for.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
