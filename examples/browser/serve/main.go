// Command serve serves the browser example (package browser) beside an
// edge node, same-origin with the edge's WebSocket:
//
//	go run ./examples/browser/serve                    # with make run going
//
// then open http://127.0.0.1:8000/?token=… with a token for the session
// (pushctl token), or ?session=… in development mode. (The edge's own
// demo page, --demo, needs no server beside it: make run prints its URL.)
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pushfabric/pushfabric/examples/browser"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "where to serve the page")
	edge := flag.String("edge", "ws://127.0.0.1:8080/", "the edge node's WebSocket listener")
	flag.Parse()
	if err := run(*listen, *edge); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(listen, edge string) error {
	h, err := browser.Handler(edge)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "serving the page on http://%s/ for the edge at %s; open it with ?token=… (or ?session=… in development mode); Ctrl-C to stop\n", ln.Addr(), edge)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
