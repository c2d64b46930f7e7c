package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/internal/natsurl"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// natsFlags are how pushctl reaches NATS.
type natsFlags struct {
	url, creds, prefix string
}

func (n *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.url, "nats", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials (.creds) file")
	fs.StringVar(&n.prefix, "prefix", protocol.DefaultPrefix, "subject prefix of pushes")
}

func (n *natsFlags) connect() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("pushctl"), nats.Timeout(5 * time.Second)}
	if n.creds != "" {
		opts = append(opts, nats.UserCredentials(n.creds))
	}
	if err := natsurl.Check(n.url); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", natsurl.Redact(n.url), err)
	}
	return nc, nil
}

// headerFlags collects repeated --header key=value flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ",") }
func (h *headerFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("header %q: want key=value", v)
	}
	*h = append(*h, v)
	return nil
}

func runPush(args []string) int {
	var (
		nf                    natsFlags
		priority, ack, id, ct string
		expiresIn, timeout    time.Duration
		headers               headerFlags
		asJSON                bool
	)
	fs := flag.NewFlagSet("pushctl push", flag.ContinueOnError)
	fs.Usage = cli.Usage(fs, "Usage: pushctl push [flags] <session> <payload | ->\n\nPublishes a push and prints the edge node's acknowledgement. A payload of - is read from\nstandard input. Exit status: 0 when the push is enqueued or written, 1 when it is dead\n(dead-lettered with the reason shown, offline when no node holds the session) or on error.")
	nf.register(fs)
	fs.StringVar(&priority, "priority", "high", "high or low")
	fs.StringVar(&ack, "ack", protocol.AckEnqueued, "what to wait for: enqueued (in the session's queue) or written (in the client's socket)")
	fs.StringVar(&id, "id", "", "push id; default: a new unique id")
	fs.StringVar(&ct, "content-type", "", "content type passed to the client")
	fs.DurationVar(&expiresIn, "expires-in", 0, "dead-letter the push as expired if it is not written within this; 0: never")
	fs.Var(&headers, "header", "extra header key=value (repeatable)")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the acknowledgement")
	fs.BoolVar(&asJSON, "json", false, "print the acknowledgement as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return cli.FlagExit(err)
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	session, payload := fs.Arg(0), []byte(fs.Arg(1))
	if fs.Arg(1) == "-" {
		var err error
		if payload, err = io.ReadAll(os.Stdin); err != nil {
			return fail("push", err)
		}
	}
	opts := []producer.Option{producer.WithAck(ack)}
	if id != "" {
		opts = append(opts, producer.WithID(id))
	}
	if ct != "" {
		opts = append(opts, producer.WithContentType(ct))
	}
	if expiresIn > 0 {
		opts = append(opts, producer.WithExpiry(time.Now().Add(expiresIn)))
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, "=")
		opts = append(opts, producer.WithHeader(k, v))
	}
	nc, err := nf.connect()
	if err != nil {
		return fail("push", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tp, flushSpans, err := cli.TracingFromEnv(ctx)
	if err != nil {
		return fail("push", err)
	}
	defer flushSpans(ctx)
	p, err := producer.New(nc, producer.Options{Prefix: nf.prefix, Name: "pushctl", TracerProvider: tp})
	if err != nil {
		return fail("push", err)
	}
	if err := p.Start(ctx); err != nil {
		return fail("push", err)
	}
	prio, err := push.ParsePriority(priority)
	if err != nil {
		return fail("push", err)
	}
	a, err := p.Push(ctx, session, prio, payload, opts...)
	if cerr := p.Stop(ctx); err == nil && cerr != nil {
		err = fmt.Errorf("writing the dead letter: %w", cerr)
	}
	if err != nil {
		return fail("push", err)
	}
	printAck(a, asJSON)
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
	default:
		fmt.Printf("%s on node %s (push %s)\n", a.Status, a.Node, a.ID)
	}
}
