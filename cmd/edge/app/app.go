// Package app composes an edge node from pushfabric's modules with fx: the
// NATS bus, the dead-letter writer, the session registry and the edge
// server, plus its listeners. cmd/edge runs it; tests run it in-process.
//
// It is the composition root: with the commands, the one place that
// imports fx and Prometheus, whose collectors read the libraries' figures.
// It may import every library of the module; only commands and tests
// import it (tests/imports_test.go).
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/registry"
	"github.com/pushfabric/pushfabric/token"
)

// Config is an edge node's whole configuration.
type Config struct {
	WSListen    string // WebSocket listener; "" for none
	TCPListen   string // framed-TCP listener; "" for none
	AdminListen string // /metrics, /healthz, /readyz; "" for none
	Pprof       bool   // also /debug/pprof/ on the admin listener
	// AllowOpenNATS and AllowOpenPprof let the embedded NATS server with
	// no user, and the Go profiles, serve off loopback; without them the
	// node refuses to start so (see exposure).
	AllowOpenNATS  bool
	AllowOpenPprof bool
	// Cmdline is the command line /debug/pprof/cmdline shows, its secrets
	// redacted (cli.RedactArgs); nil shows none.
	Cmdline []string
	// Client authentication: a JWT HS256 secret file or a PEM public key
	// file. With neither, and every listener on loopback, development mode:
	// clients name their session.
	JWTSecretFile    string
	JWTPublicKeyFile string

	Bus    bus.Config
	Edge   edge.Config
	Stream dlq.StreamConfig
	Writer dlq.WriterConfig
}

// DefaultConfig listens on loopback (WebSocket 8080, TCP 8081) with an
// embedded NATS server on 4222.
func DefaultConfig() Config {
	c := Config{
		WSListen:    "127.0.0.1:8080",
		TCPListen:   "127.0.0.1:8081",
		AdminListen: "127.0.0.1:9090",
		Bus:         bus.DefaultConfig(),
		Edge:        edge.DefaultConfig(),
		Stream:      dlq.DefaultStreamConfig(),
		Writer:      dlq.DefaultWriterConfig(),
	}
	return c
}

// Node is a running edge node, for whoever started it in-process.
type Node struct {
	Server     *edge.Server
	Bus        *bus.Conn
	Dispatcher *bus.Dispatcher
	Writer     *dlq.Writer
	Auth       string // the authentication mode: jwt-hs256, jwt-public-key or development
	Tracing    bool   // pushes carrying a trace context are traced

	mu    sync.Mutex
	addrs map[string]net.Addr // guarded by mu: "websocket", "tcp" → listening address
}

// Addr is where the node listens for "websocket", "tcp" or "admin", once
// started; nil if it does not.
func (n *Node) Addr(transport string) net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrs[transport]
}

// Options is the fx application of an edge node. node, if not nil, is
// filled in as the application is built.
func Options(cfg Config, log *zap.Logger, node *Node) fx.Option {
	if node == nil {
		node = &Node{}
	}
	// Every dead letter goes through the bus, which tells producers; the
	// edge must hand refused pushes to it, not return them.
	cfg.Edge.TryPush = edge.TryPushDeadLetters
	cfg.Writer.Prefix, cfg.Stream.Prefix, cfg.Writer.Node = cfg.Bus.Prefix, cfg.Bus.Prefix, cfg.Bus.Node
	quiet := fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }) // errors come back from Start and Stop
	open, err := exposure(cfg)
	if err != nil {
		return fx.Options(quiet, fx.Error(err))
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.MustRegister(buildInfo(version.Current()))
	h := &health{}
	return fx.Options(
		quiet,
		// First, so that it is said before anything listens.
		fx.Invoke(func() { warnOpen(log, open) }),
		fx.Supply(cfg.Edge, cfg.Stream, cfg.Writer, log, metrics),
		fx.Supply(fx.Annotate(metrics, fx.As(new(prometheus.Registerer)))),
		fx.Supply(fx.Annotate(cfg.Bus.Node, fx.ResultTags(`name:"node"`))),
		fx.Provide(
			func(lc fx.Lifecycle) (bus.Config, error) {
				c, err := withTracing(lc, cfg.Bus)
				node.Tracing = c.TracerProvider != nil
				return c, err
			},
			func() (edge.Authenticator, error) {
				a, mode, err := authenticator(cfg)
				node.Auth = mode
				return a, err
			},
		),
		registry.Module[edge.Conn](),
		bus.Module,
		dlq.Module,
		edge.Module,
		// The admin listener first, so that it stops last: /readyz answers
		// "draining" while the node drains.
		fx.Invoke(func(lc fx.Lifecycle, c *bus.Conn) error {
			return node.serveAdmin(lc, cfg, metrics, h, c, log)
		}),
		// After the admin listener: registering builds the server, the
		// dispatcher and the writer, and what is built after the listener
		// stops before it, so /readyz answers while they drain.
		fx.Invoke(registerMetrics),
		fx.Invoke(func(lc fx.Lifecycle, sh fx.Shutdowner, srv *edge.Server, c *bus.Conn, d *bus.Dispatcher, w *dlq.Writer) {
			node.Server, node.Bus, node.Dispatcher, node.Writer = srv, c, d, w
			lc.Append(fx.StartHook(func() error {
				if err := node.listen(cfg, srv, sh, log); err != nil {
					return err
				}
				h.serving.Store(true)
				return nil
			}))
		}),
		// Registered last, so it runs first on stop.
		fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.StopHook(func() { h.draining.Store(true) }))
		}),
	)
}

// withTracing gives the bus the tracer provider the OTEL_* environment
// asks for (none: tracing off), unless the config has one already; the
// exporter is flushed when the node has stopped.
func withTracing(lc fx.Lifecycle, cfg bus.Config) (bus.Config, error) {
	if cfg.TracerProvider != nil {
		return cfg, nil
	}
	tp, shutdown, err := cli.TracingFromEnv(context.Background())
	if err != nil {
		return cfg, err
	}
	cfg.TracerProvider = tp
	lc.Append(fx.StopHook(shutdown))
	return cfg, nil
}

// serveAdmin starts the admin listener, if configured.
func (n *Node) serveAdmin(lc fx.Lifecycle, cfg Config, reg *prometheus.Registry, h *health, c *bus.Conn, log *zap.Logger) error {
	js, err := jetstream.New(c.NC)
	if err != nil {
		return err
	}
	h.conn, h.js = c, js
	if err := reg.Register(readyGauge(h)); err != nil {
		return err
	}
	if cfg.AdminListen == "" {
		return nil
	}
	var a *admin
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			var err error
			if a, err = newAdmin(cfg.AdminListen, cfg.Pprof, cfg.Cmdline, reg, h, log.Named("admin")); err != nil {
				return err
			}
			n.setAddr("admin", a.ln.Addr())
			return nil
		},
		OnStop: func(ctx context.Context) error { return a.stop(ctx) },
	})
	return nil
}

func (n *Node) setAddr(name string, a net.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.addrs == nil {
		n.addrs = map[string]net.Addr{}
	}
	n.addrs[name] = a
}

// listen opens the configured listeners and serves them; a listener that
// fails while serving stops the application.
func (n *Node) listen(cfg Config, srv *edge.Server, sh fx.Shutdowner, log *zap.Logger) error {
	for _, l := range []struct {
		transport, addr string
		serve           func(net.Listener) error
	}{{"websocket", cfg.WSListen, srv.ServeWebSocket}, {"tcp", cfg.TCPListen, srv.ServeTCP}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", l.transport, err)
		}
		n.setAddr(l.transport, ln.Addr())
		go func() {
			if err := l.serve(ln); !errors.Is(err, edge.ErrServerClosed) {
				log.Error("listener failed; stopping", zap.String("transport", l.transport), zap.Error(err))
				_ = sh.Shutdown(fx.ExitCode(1))
			}
		}()
	}
	return nil
}

// authenticator picks client authentication from cfg.
func authenticator(cfg Config) (edge.Authenticator, string, error) {
	switch {
	case cfg.JWTSecretFile != "" && cfg.JWTPublicKeyFile != "":
		return nil, "", errors.New("give a JWT secret file or a public key file, not both")
	case cfg.JWTSecretFile != "":
		b, err := os.ReadFile(cfg.JWTSecretFile)
		if err != nil {
			return nil, "", fmt.Errorf("jwt secret: %w", err)
		}
		v, err := token.NewHS256([]byte(strings.TrimSpace(string(b))))
		return bearer(v, err, "jwt-hs256")
	case cfg.JWTPublicKeyFile != "":
		b, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("jwt public key: %w", err)
		}
		v, err := token.NewPublicKey(b)
		return bearer(v, err, "jwt-public-key")
	}
	for _, addr := range []string{cfg.WSListen, cfg.TCPListen} {
		if addr != "" && !loopback(addr) {
			return nil, "", fmt.Errorf("listener %s is not on loopback: configure a JWT secret or public key file (development mode serves loopback only)", addr)
		}
	}
	return edge.DevAuth{}, "development", nil
}

// bearer is the authenticator of a token verifier, if it could be made.
func bearer(v *token.Verifier, err error, mode string) (edge.Authenticator, string, error) {
	if err != nil {
		return nil, "", err
	}
	return edge.BearerAuth(v), mode, nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run starts the node and returns once it is serving: stop it with the
// returned function, which drains within ctx.
func Run(ctx context.Context, cfg Config, log *zap.Logger) (*Node, func(context.Context) error, error) {
	node := &Node{}
	app := fx.New(Options(cfg, log, node))
	if err := app.Start(ctx); err != nil {
		return nil, nil, err
	}
	return node, app.Stop, nil
}
