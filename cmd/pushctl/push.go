package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// natsFlags are how pushctl reaches NATS: the servers, the credentials
// (or a nats CLI context) and the subject prefix.
type natsFlags struct {
	cli.NATSFlags `embed:""`
	Prefix        string `default:"${prefix}" help:"Subject prefix of pushes."`
}

func (n *natsFlags) connect() (*nats.Conn, error) {
	return n.NATSFlags.Connect("pushctl", 5*time.Second)
}

// pushCmd is pushctl push.
type pushCmd struct {
	natsFlags   `embed:""`
	Session     string        `arg:"" help:"The session to push to."`
	Payload     string        `arg:"" help:"The payload; - reads it from standard input."`
	Priority    string        `default:"high" enum:"high,low" help:"high or low."`
	Ack         string        `default:"enqueued" enum:"enqueued,written,received" help:"What to wait for: enqueued (in the session's queue), written (in the client's socket) or received (the client application confirmed it; the edge gives up on it after its --receipt-timeout)."`
	ID          string        `name:"id" help:"Push id; default: a new unique id."`
	ContentType string        `help:"Content type passed to the client."`
	ExpiresIn   time.Duration `help:"Dead-letter the push as expired if it is not written within this; 0: never."`
	Header      []string      `sep:"none" placeholder:"KEY=VALUE" help:"Extra header key=value (repeatable)."`
	Timeout     time.Duration `default:"10s" help:"How long to wait for the acknowledgement."`
	JSON        bool          `name:"json" help:"Print the acknowledgement as JSON."`
}

// Help is shown under the command's usage.
func (c *pushCmd) Help() string {
	return "Publishes a push and prints the edge node's acknowledgement. Exit status: 0 when the push is\nenqueued, written or received, 1 when it is dead (dead-lettered with the reason shown, offline when\nno node holds the session) or on error, such as no acknowledgement within --timeout (the push is\nthen unacknowledged: it may have been delivered; send it again with the same --id)."
}

// Validate checks the session's name and that the headers are key=value.
func (c *pushCmd) Validate(kctx *kong.Context) error {
	if err := checkArg(kctx, "session", "session", c.Session); err != nil {
		return err
	}
	for _, h := range c.Header {
		if k, _, ok := strings.Cut(h, "="); !ok || k == "" {
			return fmt.Errorf("--header %q: want key=value", h)
		}
	}
	return nil
}

func (c *pushCmd) options() []producer.Option {
	opts := []producer.Option{producer.WithAck(c.Ack)}
	if c.ID != "" {
		opts = append(opts, producer.WithID(c.ID))
	}
	if c.ContentType != "" {
		opts = append(opts, producer.WithContentType(c.ContentType))
	}
	if c.ExpiresIn > 0 {
		opts = append(opts, producer.WithExpiry(time.Now().Add(c.ExpiresIn)))
	}
	for _, h := range c.Header {
		k, v, _ := strings.Cut(h, "=")
		opts = append(opts, producer.WithHeader(k, v))
	}
	return opts
}

func (c *pushCmd) run() int {
	payload := []byte(c.Payload)
	if c.Payload == "-" {
		var err error
		if payload, err = io.ReadAll(os.Stdin); err != nil {
			return fail("push", err)
		}
	}
	nc, err := c.connect()
	if err != nil {
		return fail("push", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	tp, flushSpans, err := cli.TracingFromEnv(ctx)
	if err != nil {
		return fail("push", err)
	}
	defer flushSpans(ctx)
	p, err := producer.New(nc, producer.Options{Prefix: c.Prefix, Name: "pushctl", TracerProvider: tp})
	if err != nil {
		return fail("push", err)
	}
	if err := p.Start(ctx); err != nil {
		return fail("push", err)
	}
	prio, err := push.ParsePriority(c.Priority)
	if err != nil {
		return fail("push", err)
	}
	a, err := p.Push(ctx, c.Session, prio, payload, c.options()...)
	if cerr := p.Stop(ctx); err == nil && cerr != nil {
		err = fmt.Errorf("writing the dead letter: %w", cerr)
	}
	if err != nil {
		return fail("push", err)
	}
	printAck(a, c.JSON)
	if a.Status == protocol.StatusDead {
		return 1
	}
	return 0
}

func printAck(a protocol.Ack, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(a)
		fmt.Println(string(b))
		return
	}
	switch a.Status {
	case protocol.StatusDead:
		fmt.Printf("dead: %s (push %s, dead-lettered by %s)\n", a.Reason, a.ID, a.Node)
	case protocol.StatusReceived:
		fmt.Printf("received: the client confirmed it, on node %s (push %s)\n", a.Node, a.ID)
	default:
		fmt.Printf("%s on node %s (push %s)\n", a.Status, a.Node, a.ID)
	}
}
