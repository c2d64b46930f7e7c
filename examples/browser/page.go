// Package browser is the browser example: a page (index.html) on the
// JavaScript client (clients/js), and Handler, which serves it with the
// client's modules beside an edge node so that the page and its WebSocket
// share one origin: what an application's own server does.
//
// A page opened from file:// sends Origin: null, which an edge refuses, and
// one served from another origin needs that origin listed in the edge's
// --ws-allowed-origins. Handler needs neither: it passes /ws on to the edge
// with the page's own Host, so the edge sees a page of its own origin.
// Command serve (go run ./examples/browser/serve) runs it.
package browser

import (
	"embed"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/pushfabric/pushfabric/clients/js"
)

//go:embed index.html
var files embed.FS // read-only: the page

// Handler serves the page at /, the JavaScript client's modules at
// /pushfabric/ (clients/js/src, which the page imports), and passes
// WebSocket upgrades for /ws on to the edge at edgeURL (ws://host:port/),
// with the query (token, session), Origin and Host the browser sent: the
// edge finds the page's origin its own, and checks the token or session
// as for any client.
func Handler(edgeURL string) (http.Handler, error) {
	target, err := url.Parse(edgeURL)
	if err != nil {
		return nil, fmt.Errorf("edge url: %w", err)
	}
	switch target.Scheme {
	case "ws":
		target.Scheme = "http"
	case "wss":
		target.Scheme = "https"
	default:
		return nil, fmt.Errorf("edge url %q: want ws://host:port/ or wss://", edgeURL)
	}
	target.Path = "/"
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.URL.Path = "/"
		r.Out.Host = r.In.Host // the page's origin is the edge's, as far as it can tell
	}}
	mux := http.NewServeMux()
	mux.Handle("/ws", proxy)
	mux.Handle("/pushfabric/", http.StripPrefix("/pushfabric", js.Library()))
	mux.Handle("/", http.FileServerFS(files))
	return mux, nil
}
