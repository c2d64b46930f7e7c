// Command rpc-service is a backend service for pushfabric clients'
// requests, over NATS: an edge node forwards a client's request for
// method to req.<prefix>.<method>, and this service answers in the queue
// group "pushfabric" (run as many copies as you like; each request goes to
// one).
//
//   - feed <n>: a stream of n pages (default 5), one every --interval,
//     addressed to the session that asked;
//   - echo <text>: one reply, the text back.
//
// With `make run` going in another terminal:
//
//	go run ./examples/rpc-service
//	./bin/pushctl request --secret-file data/jwt-secret --session carol feed 3
//
// It imports the backend helper (package backend) and nats.go, as any Go
// backend would, and nothing of the edge node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"iter"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
)

func main() {
	url := flag.String("nats", nats.DefaultURL, "NATS server URL")
	prefix := flag.String("prefix", "push", "the edge nodes' subject prefix (--prefix)")
	interval := flag.Duration("interval", 200*time.Millisecond, "time between feed pages")
	flag.Parse()
	if err := run(*url, *prefix, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "rpc-service:", err)
		os.Exit(1)
	}
}

func run(url, prefix string, interval time.Duration) error {
	nc, err := nats.Connect(url, nats.Name("rpc-service"), nats.MaxReconnects(-1), // a backend waits for its NATS
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			fmt.Fprintf(os.Stderr, "NATS connection lost (%v): no requests are served until it is back\n", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			fmt.Fprintf(os.Stderr, "NATS connection back (%s): serving again\n", nc.ConnectedAddr())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			fmt.Fprintf(os.Stderr, "NATS: %v\n", err) // a permissions violation, say
		}))
	if err != nil {
		return err
	}
	defer nc.Close()
	opts := backend.Options{Prefix: prefix, OnError: func(req *backend.Request, err error) {
		fmt.Fprintf(os.Stderr, "%s for %s: %v\n", req.Method, req.Session, err)
	}}
	feed, err := backend.New(nc, "feed", feedPages(interval), opts)
	if err != nil {
		return err
	}
	echo, err := backend.New(nc, "echo", func(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.One(backend.Reply{Payload: req.Payload, ContentType: req.ContentType})
	}, opts)
	if err != nil {
		return err
	}
	if err := feed.Start(context.Background()); err != nil {
		return err
	}
	if err := echo.Start(context.Background()); err != nil {
		return errors.Join(err, feed.Stop(context.Background()))
	}
	fmt.Fprintf(os.Stderr, "serving req.%[1]s.feed and req.%[1]s.echo on %[2]s; Ctrl-C to stop\n", prefix, nc.ConnectedAddr()) // the address: a URL may hold credentials

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(feed.Stop(ctx), echo.Stop(ctx))
}

// feedPages answers "feed <n>" with n pages, one every interval.
func feedPages(interval time.Duration) backend.Handler {
	return func(ctx context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		n := 5
		if len(req.Payload) > 0 {
			var err error
			if n, err = strconv.Atoi(string(req.Payload)); err != nil || n < 0 || n > 1000 {
				return backend.Fail(&backend.Error{Code: "bad_request", Message: "the payload is a page count from 0 to 1000"})
			}
		}
		return func(yield func(backend.Reply, error) bool) {
			t := time.NewTicker(interval)
			defer t.Stop()
			for i := 1; i <= n; i++ {
				if i > 1 {
					select {
					case <-ctx.Done():
						yield(backend.Reply{}, &backend.Error{Code: "unavailable", Message: "the service is stopping"})
						return
					case <-t.C:
					}
				}
				page := fmt.Sprintf("page %d of %d for %s", i, n, req.Session)
				if !yield(backend.Reply{Payload: []byte(page), ContentType: "text/plain"}, nil) {
					return
				}
			}
		}
	}
}
