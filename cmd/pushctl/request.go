package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/push"
)

// requestCmd is pushctl request.
type requestCmd struct {
	clientFlags `embed:""`
	Session     string `default:"pushctl" help:"The session to connect as (with --secret-file or --key-file, or in development mode)."`
	Method      string `arg:"" help:"The method to call."`
	Payload     string `arg:"" optional:"" help:"The request's payload; - reads it from standard input."`
}

// Help is shown under the command's usage.
func (c *requestCmd) Help() string {
	return "Connects to an edge as a client, sends a request for method and prints each response frame's\n" +
		"payload as it arrives. The edge answers from its own handlers or forwards the request to\n" +
		"req.<prefix>.<method> over NATS. Exit status 1 when the request ends with an error frame (printed\n" +
		"to standard error as \"error <code>: <message>\"). Ctrl-C cancels the request."
}

// Validate checks the address, the keys, the session's name and the
// method's.
func (c *requestCmd) Validate(kctx *kong.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := push.CheckName("--session", c.Session); err != nil {
		return err
	}
	return checkArg(kctx, "method", "method", c.Method)
}

func (c *requestCmd) run() int {
	payload := []byte(c.Payload)
	if c.Payload == "-" {
		var err error
		if payload, err = io.ReadAll(os.Stdin); err != nil {
			return fail("request", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	conn, _, err := dialAs(ctx, c.clientFlags, c.Session)
	if err != nil {
		return fail("request", err)
	}
	defer conn.Close()
	return request(ctx, conn, c.Method, payload, c.JSON)
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
