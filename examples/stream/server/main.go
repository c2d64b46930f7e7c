// Command server is a small pushfabric edge without NATS: it accepts
// WebSocket and framed-TCP clients in development mode (the client names
// its session), answers the request "countdown" with a stream of frames,
// and pushes every line typed on its standard input to every connected
// session.
//
//	go run ./examples/stream/server
//	go run ./examples/stream/client -session alice
//
// It imports the edge library (package edge) and nothing of NATS: an edge
// is usable on its own.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"iter"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/clients/js"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/push"
)

func main() {
	wsAddr := flag.String("ws", "127.0.0.1:8080", "WebSocket listen address (loopback: development mode)")
	tcpAddr := flag.String("tcp", "127.0.0.1:8081", "framed-TCP listen address (loopback: development mode)")
	flag.Parse()
	if err := run(*wsAddr, *tcpAddr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(wsAddr, tcpAddr string) error {
	logCfg := zap.NewDevelopmentConfig()
	logCfg.DisableStacktrace = true
	log, err := logCfg.Build()
	if err != nil {
		return err
	}
	defer log.Sync()
	srv, err := edge.NewServer(edge.Options{
		Config:   edge.DefaultConfig(),
		Logger:   log,
		Auth:     edge.DevAuth{},
		Handlers: map[string]edge.Handler{"countdown": countdown},
		Node:     "example",
		Pages:    js.Demo(), // the demo page at /demo/ on the WebSocket listener, same origin as its WebSocket
	})
	if err != nil {
		return err // a bad config: nothing is running yet
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	defer srv.Shutdown(context.Background()) // stops the flushers, if a listener below fails
	wl, err := net.Listen("tcp", wsAddr)
	if err != nil {
		return err
	}
	tl, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		return err
	}
	var serving sync.WaitGroup
	for _, serve := range []func() error{
		func() error { return srv.ServeWebSocket(wl) },
		func() error { return srv.ServeTCP(tl) },
	} {
		serving.Go(func() {
			if err := serve(); !errors.Is(err, edge.ErrServerClosed) {
				log.Error("serve", zap.Error(err))
			}
		})
	}
	printHowTo(wl.Addr(), tl.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go pushLines(srv) // reads until stdin ends; the process ends with ctx
	<-ctx.Done()
	fmt.Println("\nshutting down: clients get close reason shutdown")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	serving.Wait()
	return err
}

// countdown answers "countdown" with the numbers from the payload (default
// 5) down to 1, one every 200 ms, then "liftoff". It stops as soon as the
// client cancels or leaves.
func countdown(ctx context.Context, req *edge.Request) (edge.Response, error) {
	n := 5
	if len(req.Payload) > 0 {
		v, err := strconv.Atoi(string(req.Payload))
		if err != nil || v < 0 || v > 1000 {
			return edge.Response{}, &edge.ProtocolError{Code: "bad_count", Message: "payload must be a number from 0 to 1000"}
		}
		n = v
	}
	return edge.Stream(ticks(ctx, n)), nil
}

func ticks(ctx context.Context, n int) iter.Seq2[edge.Frame, error] {
	return func(yield func(edge.Frame, error) bool) {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for i := n; i > 0; i-- {
			if !yield(edge.Frame{ContentType: "text/plain", Payload: []byte(strconv.Itoa(i))}, nil) {
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		yield(edge.Frame{ContentType: "text/plain", Payload: []byte("liftoff")}, nil)
	}
}

// pushLines pushes each line of standard input to every session.
func pushLines(srv *edge.Server) {
	in := bufio.NewScanner(os.Stdin)
	for id := 1; in.Scan(); id++ {
		sent := 0
		srv.Registry().Range(func(session string, c *edge.Conn) bool {
			f := edge.Frame{ID: fmt.Sprintf("line-%d", id), ContentType: "text/plain", Payload: []byte(in.Text())}
			if c.TryPush(push.High, edge.Envelope{Frame: f}) == nil {
				sent++
			}
			return true
		})
		fmt.Printf("pushed line-%d to %d session(s)\n", id, sent)
	}
	fmt.Println("standard input closed: no more pushes from it; Ctrl-C stops the server")
}

func printHowTo(ws, tcp net.Addr) {
	fmt.Printf(`
pushfabric example edge (development mode: a client names its session, loopback only)

  connect a client (another terminal):
    go run ./examples/stream/client -session alice                 # WebSocket
    go run ./examples/stream/client -session bob -addr tcp://%s   # framed TCP

  or from a browser, the demo page: open http://%s/demo/?session=carol
    and send it a request for countdown 3

  send a push: type a line here and press Enter; every session receives it.
  stop: Ctrl-C (clients are told "shutdown" and get what was queued).

`, tcp, ws)
}
