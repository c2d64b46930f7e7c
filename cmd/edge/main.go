// Command edge runs a pushfabric edge node: it holds client connections
// (WebSocket and framed TCP), delivers the pushes producers publish to
// NATS, and dead-letters what it cannot deliver. With no NATS URL it starts
// an embedded NATS server with JetStream on loopback.
//
//	edge                                   # everything on loopback, development mode
//	edge --jwt-secret-file secret --nats-url nats://n1:4222,nats://n2:4222 --ws-listen :8080
//
// Run edge --help for every flag; each can also be set by an environment
// variable PUSHFABRIC_<FLAG>. Flags are parsed with kong (flags.go). The node itself is composed by package
// cmd/edge/app; this command owns the flags, the signals and the startup
// log line.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"go.uber.org/dig"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type options struct {
	cfg        app.Config
	logLevel   string
	logFormat  string
	quickstart bool
}

const description = `Runs a pushfabric edge node. With no --nats-url it starts an embedded NATS server with
JetStream on --nats-listen; with no JWT key file and every listener on loopback, clients name
their session (development mode).

Every flag can also be set by the environment variable shown with it (PUSHFABRIC_<FLAG>); a
flag on the command line wins. Exit status: 2 for a mistake on the command line or a
configuration refused before anything starts, told in one line; 1 when the node failed to
start or stopped with errors.`

// defaultDrainDelay is the binary's --drain-delay: well above the shipped
// HAProxy config's check interval (1 s) times its fall count (2), so a
// loaded balancer has seconds to spare. (app.DefaultConfig has none: a program that embeds a node has no
// load balancer unless it says so.)
const defaultDrainDelay = 5 * time.Second

// binaryDefaults is the configuration the edge binary starts from.
func binaryDefaults() app.Config {
	c := app.DefaultConfig()
	c.DrainDelay = defaultDrainDelay
	return c
}

func parser(f *edgeFlags, stdout, stderr io.Writer) (*kong.Kong, error) {
	vars := defaults(binaryDefaults())
	vars["version"] = version.Current().String()
	return kong.New(f, kong.Name("edge"), kong.Description(description), kong.DefaultEnvars(envPrefix), vars,
		kong.Writers(stdout, stderr), kong.ConfigureHelp(kong.HelpOptions{Compact: true}), kong.Configuration(loadConfigFile))
}

// parse turns args into options; a mistake is printed and its exit
// status returned with ok false.
func parse(args []string, stdout, stderr io.Writer) (o *options, code int, ok bool) {
	var f edgeFlags
	p, err := parser(&f, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "edge:", err)
		return nil, 1, false
	}
	if _, err := p.Parse(args); err != nil {
		return nil, cli.UsageError(stderr, "edge", err), false
	}
	o = &options{cfg: binaryDefaults(), logLevel: f.LogLevel, logFormat: f.LogFormat, quickstart: f.Quickstart}
	f.apply(&o.cfg)
	if err := o.cfg.Validate(); err != nil {
		return nil, cli.UsageError(stderr, "edge", f.flagErrors(err)), false
	}
	return o, 0, true
}

func run(args []string) int {
	o, code, ok := parse(args, os.Stdout, os.Stderr)
	if !ok {
		return code
	}
	o.cfg.Cmdline = cli.RedactArgs(os.Args, secretFlag)
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
	interrupted := stopStartOnSignal(signals, cancel)
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
	sig, signalled := interrupted()
	switch {
	case err != nil && signalled:
		log.Info("stopped while starting", zap.Stringer("signal", sig))
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "edge:", cli.ExplainStart(dig.RootCause(err)))
		return 1
	}
	logStarted(log, o, node)
	if o.quickstart {
		printQuickstart(o, node)
	}
	if !signalled {
		sig = <-signals
	}
	log.Info("stopping: clients are told to reconnect elsewhere; queued pushes are written until the drain deadline",
		zap.Stringer("signal", sig), zap.Duration("drain_timeout", o.cfg.Edge.DrainTimeout))
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.DrainDelay+o.cfg.Edge.DrainTimeout+stopMargin)
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

// stopStartOnSignal cancels the start (cancel) when a signal comes on
// signals before the returned function is called. That function, called
// once the start has ended, says which signal came, if one did.
func stopStartOnSignal(signals <-chan os.Signal, cancel context.CancelFunc) func() (os.Signal, bool) {
	started, got := make(chan struct{}), make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case sig := <-signals:
			got <- sig
			cancel()
		case <-started:
		}
	}()
	return func() (os.Signal, bool) {
		close(started)
		<-done
		select {
		case sig := <-got:
			return sig, true
		default:
			return nil, false
		}
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
		zap.Bool("tls", o.cfg.TLSCert != ""),
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
}
