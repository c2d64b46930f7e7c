// Command edge runs a pushfabric edge node: it holds client connections
// (WebSocket and framed TCP), delivers the pushes producers publish to
// NATS, and dead-letters what it cannot deliver. With no NATS URL it starts
// an embedded NATS server with JetStream on loopback.
//
//	edge                                   # everything on loopback, development mode
//	edge --jwt-secret-file secret --nats-url nats://n1:4222,nats://n2:4222 --ws-listen :8080
//
// Run edge --help for every flag; each can also be set by an environment
// variable PUSHFABRIC_<FLAG>. The node itself is composed by package
// cmd/edge/app; this command owns the flags, the signals and the startup
// log line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/dig"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type options struct {
	cfg        app.Config
	natsURLs   string
	node       string
	logLevel   string
	logFormat  string
	quickstart bool
}

func flags(o *options) *flag.FlagSet {
	c := &o.cfg
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.Usage = cli.Usage(fs, "Usage: edge [flags]\n\nRuns a pushfabric edge node. With no --nats-url it starts an embedded NATS server with JetStream\non --nats-listen; with no JWT key file and every listener on loopback, clients name their session\n(development mode).")
	fs.StringVar(&c.WSListen, "ws-listen", c.WSListen, "WebSocket listen address; empty: none")
	fs.StringVar(&c.TCPListen, "tcp-listen", c.TCPListen, "framed-TCP listen address; empty: none")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "admin listen address (/metrics, /healthz, /readyz); empty: none")
	fs.BoolVar(&c.Pprof, "pprof", false, "also serve Go profiles (/debug/pprof/) on the admin listener; off loopback only with --allow-open-pprof")
	fs.BoolVar(&c.AllowOpenPprof, "allow-open-pprof", false, "let --pprof serve profiles and the command line on an admin listener off loopback, to anyone who reaches it (logged as a warning)")
	fs.StringVar(&c.JWTSecretFile, "jwt-secret-file", "", "file holding the HS256 secret clients' tokens are signed with (at least 32 bytes)")
	fs.StringVar(&c.JWTPublicKeyFile, "jwt-public-key-file", "", "PEM public key (RSA: RS256, Ed25519: EdDSA) clients' tokens are checked with")

	fs.StringVar(&o.natsURLs, "nats-url", "", "NATS server URLs, comma-separated; empty: start an embedded server")
	fs.BoolVar(&c.Bus.ConnectRetry, "nats-connect-retry", false, "when --nats-url cannot be reached at start, start anyway and keep trying: the node is not ready (/readyz 503) and takes no clients until NATS is there (for orchestrators); off: exit at once")
	fs.StringVar(&c.Bus.CredsFile, "nats-creds", "", "NATS credentials (.creds) file")
	fs.StringVar(&c.Bus.NKeySeedFile, "nats-nkey", "", "NATS NKey seed file")
	cli.SecretVar(fs, &c.Bus.Token, "nats-token", "NATS authentication `token`; [REDACTED] in the --pprof command line, but ps shows it: prefer the environment variable")
	fs.StringVar(&c.Bus.User, "nats-user", "", "NATS user, with --nats-password-file: the node connects as this user; the embedded server lets in this user only")
	fs.StringVar(&c.Bus.PasswordFile, "nats-password-file", "", "file holding the --nats-user password (plain text; surrounding white space is ignored)")
	fs.StringVar(&c.Bus.TLSCA, "nats-tls-ca", "", "CA bundle to trust for NATS TLS")
	fs.StringVar(&c.Bus.TLSCert, "nats-tls-cert", "", "client certificate for NATS TLS")
	fs.StringVar(&c.Bus.TLSKey, "nats-tls-key", "", "client key for NATS TLS")
	fs.StringVar(&c.Bus.Embedded.Listen, "nats-listen", c.Bus.Embedded.Listen, "where the embedded NATS server listens (for producers and the nats CLI; port 0: any free port); off loopback only with --nats-user or --allow-open-nats")
	fs.BoolVar(&c.AllowOpenNATS, "allow-open-nats", false, "let the embedded NATS server listen off loopback with no --nats-user: anyone who reaches it reads every push and can forge takeovers (logged as a warning)")
	fs.StringVar(&c.Bus.Embedded.DataDir, "data-dir", c.Bus.Embedded.DataDir, "the embedded NATS server's JetStream storage")
	fs.BoolVar(&c.Bus.RedeliverOffline, "redeliver-offline", false, "when a session connects, or NATS comes back under it, deliver its offline dead letters first, oldest first, deleting each once written")
	fs.IntVar(&c.Bus.DispatchBuffer, "dispatch-buffer", c.Bus.DispatchBuffer, "pushes received from NATS and not yet handed to their session, per dispatch lane (one lane per core); what does not fit NATS drops, counted in pushfabric_nats_dropped_messages_total")
	fs.DurationVar(&c.Bus.HandoverTimeout, "handover-timeout", c.Bus.HandoverTimeout, "a push handed to the node that took its session is dead-lettered replaced when that node has not answered within this long")
	fs.StringVar(&c.Identity.Prefix, "prefix", c.Identity.Prefix, "subject prefix: pushes are published to <prefix>.<session>.high|low")
	fs.StringVar(&o.node, "node", "", "this node's name, in acks, dead letters and takeovers; unique per node (default: host name and process id)")

	fs.DurationVar(&c.Stream.MaxAge, "dlq-max-age", c.Stream.MaxAge, "how long dead letters are kept")
	fs.Int64Var(&c.Stream.MaxBytes, "dlq-max-bytes", c.Stream.MaxBytes, "size limit of the dead-letter stream; the oldest go first")
	fs.Int64Var(&c.Stream.MaxMsgsPerSubject, "dlq-max-per-subject", c.Stream.MaxMsgsPerSubject, "dead letters kept per reason, session and priority")
	fs.IntVar(&c.Stream.Replicas, "dlq-replicas", c.Stream.Replicas, "replicas of the dead-letter stream (3 in a cluster)")

	e := &c.Edge
	fs.IntVar(&e.QueueLen, "queue-len", e.QueueLen, "pushes queued per connection and priority")
	fs.IntVar(&e.QueueBytes, "queue-bytes", e.QueueBytes, "payload bytes queued per connection and priority")
	fs.IntVar(&e.MaxHighBeforeLow, "max-high-before-low", e.MaxHighBeforeLow, "high pushes in a row before a waiting low one goes out; 0 with no --fairness-slice: strict priority")
	fs.DurationVar(&e.FairnessSlice, "fairness-slice", e.FairnessSlice, "a run of high pushes this long lets a waiting low one out; 0: off")
	fs.Float64Var((*float64)(&e.Rate), "rate", float64(e.Rate), "pushes written per second per connection; 0: no limit")
	fs.IntVar(&e.Burst, "burst", e.Burst, "rate limit burst; 0: one second's worth")
	fs.IntVar(&e.Flushers, "flushers", e.Flushers, "shared writer goroutines; 0: one per busy connection")
	fs.DurationVar(&e.DrainTimeout, "drain-timeout", e.DrainTimeout, "how long a closing connection keeps writing what is queued")
	fs.DurationVar(&e.WriteTimeout, "write-timeout", e.WriteTimeout, "a client that takes no bytes for this long is closed (too_slow)")
	fs.DurationVar(&e.HandshakeTimeout, "handshake-timeout", e.HandshakeTimeout, "time allowed to connect and authenticate")
	fs.IntVar(&e.MaxHandshakeSize, "max-handshake-size", e.MaxHandshakeSize, "largest WebSocket upgrade request (request line and headers) or TCP hello, bytes; over: 431 or close protocol")
	fs.Func("ws-allowed-origins", "web `origins` (scheme://host[:port], comma-separated; * for any) whose pages may open WebSocket connections besides the edge's own;\nclients that send no Origin (not browsers) are always let in; empty: same origin only;\nin development mode the upgrade's Host must be loopback or localhost too (no DNS rebinding)", func(v string) error {
		for o := range strings.SplitSeq(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				if err := edge.CheckOrigin(o); err != nil {
					return err
				}
				e.WSAllowedOrigins = append(e.WSAllowedOrigins, o)
			}
		}
		return nil
	})
	fs.DurationVar(&e.PingInterval, "ping-interval", e.PingInterval, "ping a client not heard from for this long")
	fs.DurationVar(&e.IdleTimeout, "idle-timeout", e.IdleTimeout, "close a client not heard from for this long")
	fs.IntVar(&e.MaxFrameSize, "max-frame-size", e.MaxFrameSize, "largest frame either way, bytes")
	fs.IntVar(&e.MaxRequests, "max-requests", e.MaxRequests, "concurrent requests per connection (over: error too_many_requests)")
	fs.IntVar(&e.StreamBuffer, "stream-buffer", e.StreamBuffer, "response frames of one request queued for the client's socket")
	fs.DurationVar(&c.Bus.RequestTimeout, "request-timeout", c.Bus.RequestTimeout, "a request forwarded to req.<prefix>.<method> ends with timeout after this long without a reply")
	fs.IntVar(&c.Bus.RequestBuffer, "request-buffer", c.Bus.RequestBuffer, "replies held per request beyond --stream-buffer while the client is behind; over: too_slow")
	fs.IntVar(&c.Bus.RequestBufferBytes, "request-buffer-bytes", c.Bus.RequestBufferBytes, "reply bytes held per request while the client is behind; over: too_slow")

	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "auto", "json, console, or auto (console on a terminal)")
	fs.BoolVar(&o.quickstart, "quickstart", false, "print how to connect a client and send a push once started")
	return fs
}

func run(args []string) int {
	o := &options{cfg: app.DefaultConfig()}
	fs := flags(o)
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "edge:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "edge: unexpected arguments %q (see edge --help)\n", fs.Args())
		return 2
	}
	o.cfg.Cmdline = cli.RedactArgs(fs, os.Args)
	if o.natsURLs != "" {
		o.cfg.Bus.URLs = strings.Split(o.natsURLs, ",")
	}
	if o.node != "" {
		o.cfg.Identity.Node = o.node
	}
	log, err := cli.Logger(o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		return 2
	}
	defer log.Sync()
	// Every line says which node wrote it, for logs gathered from many.
	return serve(o, log.With(zap.String("node", o.cfg.Identity.Node)))
}

// stopMargin is added to the drain timeout for writing dead letters and
// draining NATS at shutdown.
const stopMargin = 10 * time.Second

func serve(o *options, log *zap.Logger) int {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	startCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tp, flushSpans, err := cli.TracingFromEnv(startCtx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		return 1
	}
	defer func() { // once the node has stopped
		ctx, cancel := context.WithTimeout(context.Background(), stopMargin)
		defer cancel()
		_ = flushSpans(ctx)
	}()
	o.cfg.Bus.TracerProvider = tp
	node, stop, err := app.Run(startCtx, o.cfg, log)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", dig.RootCause(err))
		return 1
	}
	logStarted(log, o, node)
	if o.quickstart {
		printQuickstart(o, node)
	}
	sig := <-signals
	log.Info("stopping: clients are told to reconnect elsewhere; queued pushes are written until the drain deadline",
		zap.Stringer("signal", sig), zap.Duration("drain_timeout", o.cfg.Edge.DrainTimeout))
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.Edge.DrainTimeout+stopMargin)
		defer cancel()
		stopped <- stop(ctx)
	}()
	select {
	case err := <-stopped:
		if err != nil {
			log.Error("edge stopped with errors", zap.Error(err))
			return 1
		}
		log.Info("edge stopped")
		return 0
	case sig := <-signals:
		log.Warn("second signal: exiting at once, without draining", zap.Stringer("signal", sig))
		return 1
	}
}

func logStarted(log *zap.Logger, o *options, node *app.Node) {
	fields := []zap.Field{
		zap.String("version", version.Current().Version),
		zap.String("auth", node.Auth),
		zap.String("prefix", o.cfg.Identity.Prefix),
		zap.String("nats", node.Bus.URL()),
		zap.Bool("nats_embedded", node.Bus.Embedded()),
		zap.Bool("tracing", node.Tracing),
	}
	for _, t := range []string{"websocket", "tcp", "admin"} {
		if a := node.Addr(t); a != nil {
			fields = append(fields, zap.Stringer(t, a))
		}
	}
	if node.Bus.Embedded() {
		fields = append(fields, zap.String("data_dir", o.cfg.Bus.Embedded.DataDir))
	}
	log.Info("edge started", fields...)
	if node.Auth == "development" {
		log.Warn("DEVELOPMENT MODE: clients choose their session with no token; loopback only. Give --jwt-secret-file or --jwt-public-key-file for real clients.")
	}
}
