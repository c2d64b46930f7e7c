package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/edge/client"
)

func runRequest(args []string) int {
	var (
		kf      keyFlags
		addr    string
		token   string
		session string
		asJSON  bool
	)
	fs := flag.NewFlagSet("pushctl request", flag.ContinueOnError)
	fs.Usage = cli.Usage(fs, "Usage: pushctl request [flags] <method> [payload]\n\n"+
		"Connects to an edge as a client, sends a request for method (payload \"-\": read from standard\n"+
		"input) and prints each response frame's payload as it arrives. The edge answers from its own\n"+
		"handlers or forwards the request to req.<prefix>.<method> over NATS. Exit status 1 when the\n"+
		"request ends with an error frame (printed to standard error as \"error <code>: <message>\").\n"+
		"Ctrl-C cancels the request.")
	kf.register(fs)
	fs.StringVar(&addr, "addr", "ws://127.0.0.1:8080/", "edge address: ws://host:port/ or tcp://host:port")
	fs.StringVar(&token, "token", "", "client token (see pushctl token)")
	fs.StringVar(&session, "session", "pushctl", "the session to connect as (with --secret-file or --key-file, or in development mode)")
	fs.BoolVar(&asJSON, "json", false, "print each response frame as a JSON object")
	if err := cli.Parse(fs, args); err != nil {
		return cli.FlagExit(err)
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return 2
	}
	method := fs.Arg(0)
	var payload []byte
	switch p := fs.Arg(1); p {
	case "-":
		var err error
		if payload, err = io.ReadAll(os.Stdin); err != nil {
			return fail("request", err)
		}
	default:
		payload = []byte(p)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := dialAs(ctx, addr, session, token, kf)
	if err != nil {
		return fail("request", err)
	}
	defer c.Close()
	return request(ctx, c, method, payload, asJSON)
}

func request(ctx context.Context, c *client.Conn, method string, payload []byte, asJSON bool) int {
	for f, err := range c.Request(ctx, method, payload) {
		var re *client.RequestError
		switch {
		case errors.As(err, &re):
			fmt.Fprintf(os.Stderr, "error %s: %s\n", re.Code, re.Message)
			return 1
		case errors.Is(err, context.Canceled):
			fmt.Fprintln(os.Stderr, "canceled")
			return 1
		case err != nil:
			return fail("request", err)
		}
		if asJSON {
			printFrame(f, true)
			continue
		}
		os.Stdout.Write(f.Payload)
		if n := len(f.Payload); n == 0 || f.Payload[n-1] != '\n' {
			fmt.Println()
		}
	}
	return 0
}
