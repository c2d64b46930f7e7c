// Command client connects to a pushfabric edge, asks for a streamed
// "countdown" and prints the response frames as they arrive, then prints
// every push until interrupted.
//
//	go run ./examples/stream/client -session alice
//	go run ./examples/stream/client -session bob -addr tcp://127.0.0.1:8081 -count 3
//
// It imports the Go client (package edge/client) only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
)

func main() {
	addr := flag.String("addr", "ws://127.0.0.1:8080/", "edge address: ws://host:port/ or tcp://host:port")
	session := flag.String("session", "", "session to hold (development mode)")
	token := flag.String("token", "", "bearer token (production authentication)")
	count := flag.String("count", "5", "countdown length to request")
	flag.Parse()
	if *session == "" && *token == "" {
		fmt.Fprintln(os.Stderr, "client: give -session (development mode) or -token")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, client.Options{Session: *session, Token: *token}, *count); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, o client.Options, count string) error {
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, err := client.Dial(dialCtx, addr, o)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("connected to node %q as session %q\n", c.Node(), c.Session())

	fmt.Println("request countdown", count)
	for f, err := range c.Request(ctx, "countdown", []byte(count)) {
		if err != nil {
			return fmt.Errorf("countdown: %w", err)
		}
		fmt.Printf("  response: %s\n", f.Payload)
	}
	fmt.Println("  (end of stream)")

	fmt.Println("waiting for pushes; Ctrl-C to quit")
	for {
		f, err := c.Recv(ctx)
		var closed *client.CloseError
		switch {
		case errors.Is(err, context.Canceled):
			return nil
		case errors.As(err, &closed):
			fmt.Printf("the server closed the connection: %s\n", closed.Reason)
			return nil
		case err != nil:
			return err
		}
		fmt.Printf("push %s (%s, %s): %s\n", f.ID, f.Priority, f.ContentType, f.Payload)
	}
}
