package main

import (
	"context"
	"encoding/json"
	"errors"
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
	Session     string        `arg:"" optional:"" help:"The session to push to; with --group or --all, leave it out (the one argument is the payload); with --lines, give none."`
	Payload     string        `arg:"" optional:"" help:"The payload; - reads it from standard input."`
	Group       string        `help:"Push to every member of this group, on every node, instead of one session (the acknowledgement counts the members)."`
	All         bool          `name:"all" help:"Push to every connection on every node (a broadcast) instead of one session."`
	Priority    string        `default:"high" enum:"high,low" help:"high or low."`
	Ack         string        `default:"enqueued" enum:"enqueued,written,received" help:"What to wait for: enqueued (in the session's queue), written (in the client's socket) or received (the client application confirmed it; the edge gives up on it after its --receipt-timeout). A group push or broadcast takes enqueued only."`
	ID          string        `name:"id" help:"Push id; default: a new unique id."`
	ContentType string        `help:"Content type passed to the client."`
	ExpiresIn   time.Duration `help:"Dead-letter the push as expired if it is not written within this; 0: never."`
	Header      []string      `sep:"none" placeholder:"KEY=VALUE" help:"Extra header key=value (repeatable)."`
	Timeout     time.Duration `default:"10s" help:"How long to wait for the acknowledgement."`
	JSON        bool          `name:"json" help:"Print the acknowledgement as JSON."`
	Lines       bool          `help:"Read pushes from standard input, one JSON object a line ({\"session\":…,\"priority\":…,\"payload\":…,\"headers\":{…}}, docs/pushing.md), send them in batches and print what became of each that did not go through, then a summary. --priority, --ack, --content-type, --header and --expires-in apply to every line, unless the line says otherwise; --timeout to each batch."`
	Batch       int           `default:"1000" help:"With --lines: the most pushes sent at once, their acknowledgements awaited together (fewer when no more input is waiting)."`
}

// Help is shown under the command's usage.
func (c *pushCmd) Help() string {
	return "Publishes a push and prints the edge node's acknowledgement. Exit status: 0 when the push is\nenqueued, written or received, 1 when it is dead (dead-lettered with the reason shown, offline when\nno node holds the session) or on error, such as no acknowledgement within --timeout (the push is\nthen unacknowledged: it may have been delivered; send it again with the same --id). A group push or\n" +
		"broadcast: 0 when it was queued for a member at least; 1 when for none (no member on any node, or\n" +
		"every node that answered dead, each shown with its reason) or on error. With --lines: 0 when every\n" +
		"push was enqueued, written or received; 1 when any was refused, dead, unacknowledged or not sent."
}

// Validate checks the session's or group's name and that the headers are
// key=value. With --group or --all the one argument is the payload.
func (c *pushCmd) Validate(kctx *kong.Context) error {
	if err := c.target(kctx); err != nil {
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

// target checks what the push is for: a session (two arguments), or,
// with --group or --all, a group (one argument, the payload).
func (c *pushCmd) target(kctx *kong.Context) error {
	grouped := c.Group != "" || c.All
	switch {
	case c.Lines && (grouped || onCommandLine(kctx, "session")):
		return errors.New("--lines: each line names its session; give no session, payload, --group or --all")
	case c.Lines && c.ID != "":
		return errors.New("--lines: push ids are per push (each line's Push-Id header); no --id")
	case c.Lines && c.Batch < 1:
		return fmt.Errorf("--batch must be positive, got %d", c.Batch)
	case c.Lines:
		return nil
	case !onCommandLine(kctx, "session"):
		return errors.New("expected <session> <payload>")
	case c.Group != "" && c.All:
		return errors.New("--group and --all: choose one")
	case grouped && onCommandLine(kctx, "payload"):
		return errors.New("with --group or --all, give the payload alone, no session")
	case grouped && c.Ack != protocol.AckEnqueued:
		return fmt.Errorf("--ack %s: per session only; a group push is acknowledged enqueued, with its members", c.Ack)
	case grouped:
		c.Payload, c.Session = c.Session, ""
		if c.Group != "" {
			return push.CheckGroup(c.Group)
		}
		return nil
	case !onCommandLine(kctx, "payload"):
		return errors.New("expected <session> <payload>")
	}
	return checkArg(kctx, "session", "session", c.Session)
}

func (c *pushCmd) run() int {
	payload := []byte(c.Payload)
	if c.Payload == "-" && !c.Lines {
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
	if c.Group != "" || c.All {
		return c.pushGroup(ctx, p, prio, payload)
	}
	if c.Lines {
		return c.pushLines(p, prio, os.Stdin, os.Stdout, os.Stderr)
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

// pushGroup sends a group push or broadcast and prints how many members
// took it, and the nodes that answered dead; exit status 1 when no member
// did (dead-lettered offline, or dead on every node that answered).
func (c *pushCmd) pushGroup(ctx context.Context, p *producer.Producer, prio push.Priority, payload []byte) int {
	group := c.Group
	if c.All {
		group = push.AllGroup
	}
	a, err := p.PushGroup(ctx, group, prio, payload, c.options()...)
	if cerr := p.Stop(ctx); err == nil && cerr != nil {
		err = fmt.Errorf("writing the dead letter: %w", cerr)
	}
	if err != nil {
		return fail("push", err)
	}
	if c.JSON {
		b, _ := json.Marshal(a)
		fmt.Println(string(b))
	} else {
		printGroupAck(a, group)
	}
	if a.Members == 0 {
		return 1
	}
	return 0
}

// printGroupAck writes what the nodes answered to a group push: offline,
// or the members it was queued for, and each node that answered dead.
func printGroupAck(a producer.GroupAck, group string) {
	if a.Offline {
		fmt.Printf("dead: offline: no member of %s on any node (push %s, dead-lettered)\n", group, a.ID)
		return
	}
	if len(a.Nodes) > 0 {
		fmt.Printf("enqueued for %s of %s on %s (push %s)\n", counted(a.Members, "member"), group, counted(len(a.Nodes), "node"), a.ID)
	}
	for _, d := range a.Dead {
		fmt.Printf("dead: %s on node %s, for its members of %s (push %s, dead-lettered)\n", d.Reason, d.Node, group, a.ID)
	}
}
