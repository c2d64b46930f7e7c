// Package app composes an edge node from pushfabric's libraries with fx:
// the NATS bus, the dead-letter writer, the session registry and the edge
// server, plus its listeners. cmd/edge runs it; tests and applications that
// embed a node run it in-process.
//
// The libraries know nothing of fx: each component has a constructor that
// only checks its configuration and builds, and Start and Stop methods.
// The fx modules here provide the components and register their Start and
// Stop as the application's start and stop hooks, so a node that fails to
// start, at any step, stops what had started and leaves nothing running.
// [Config.Validate] checks every component's configuration before anything
// is built, and [Options] refuses a configuration it finds wrong.
//
// The node starts in this order and stops in the reverse one: the NATS
// connection (and the embedded server), the admin listener, the dead-letter
// stream and writer, the dispatcher, the request forwarder, then the edge
// server with its listeners. On stop, /readyz turns to draining first; the
// edge server drains its connections before the dispatcher stops and the
// dead-letter writer writes what it holds; the admin listener goes after
// them; then the NATS connection drains and the embedded server stops.
//
// An embedding application adds edge hooks of its own with [AddHooks]:
// they run after the dispatcher's (edge.JoinHooks), so a connection they see
// is subscribed on NATS already, and an Admit or OnConnect of theirs can
// still refuse it.
//
// Tracing is the caller's, like the logger: set Config.Bus.TracerProvider
// (cmd/edge sets it from the OTEL_* environment).
//
// It is the composition root: with the commands, the one place that
// imports fx and Prometheus, whose collectors read the libraries' figures.
// It may import every library of the module; only commands and tests
// import it (tests/imports_test.go).
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/registry"
	"github.com/pushfabric/pushfabric/token"
)

// Config is an edge node's whole configuration.
type Config struct {
	WSListen    string // WebSocket listener; "" for none
	TCPListen   string // framed-TCP listener; "" for none
	AdminListen string // /metrics, /healthz, /readyz, /sessions; "" for none
	Pprof       bool   // also /debug/pprof/ on the admin listener
	// AllowOpenNATS and AllowOpenPprof let the embedded NATS server with
	// no user, and the Go profiles, serve off loopback; without them the
	// node refuses to start so (see exposure).
	AllowOpenNATS  bool
	AllowOpenPprof bool
	// Cmdline is the command line /debug/pprof/cmdline shows, its secrets
	// redacted (cli.RedactArgs); nil shows none.
	Cmdline []string
	// Client authentication: a JWT HS256 secret file, a PEM public key
	// file, or several keys chosen by kid from a directory (JWTKeysDir)
	// and a JWKS file (JWTJWKSFile), read again when they change. With
	// none, and every listener on loopback, development mode: clients name
	// their session. JWTAudience and JWTIssuer, if set, are the aud and
	// iss tokens must carry.
	JWTSecretFile    string
	JWTPublicKeyFile string
	JWTKeysDir       string
	JWTJWKSFile      string
	JWTAudience      string
	JWTIssuer        string
	// TLSCert and TLSKey, PEM files, have both client listeners speak TLS
	// (wss://, framed TCP over TLS), 1.2 at least; the pair is read again
	// when either file changes, the last good one kept if the new one does
	// not load. AdminTLS has the admin listener serve HTTPS with them too.
	TLSCert, TLSKey string
	AdminTLS        bool
	// DrainDelay is how long a stopping node stays up not ready (/readyz
	// answers 503, draining) before it closes its clients, so that load
	// balancers, which see it at their next checks, send it no new ones
	// first. 0: none (nothing watches the node's readiness).
	DrainDelay time.Duration
	// Demo has the WebSocket listener serve the demo page (clients/js/demo)
	// at /demo/, with the JavaScript client it imports at /demo/lib/ (plain
	// GET requests only: edge.Options.Pages), for trying things out; off,
	// those paths are refused like any request that is not an upgrade.
	Demo bool

	// Identity is the node's subject prefix and name, which each
	// component takes.
	Identity push.Identity
	Bus      bus.Config
	Edge     edge.Config
	Stream   dlq.StreamConfig
	Writer   dlq.WriterConfig
}

// DefaultConfig listens on loopback (WebSocket 8080, TCP 8081) with an
// embedded NATS server on 4222.
func DefaultConfig() Config {
	c := Config{
		WSListen:    "127.0.0.1:8080",
		TCPListen:   "127.0.0.1:8081",
		AdminListen: "127.0.0.1:9090",
		Identity:    push.DefaultIdentity(),
		Bus:         bus.DefaultConfig(),
		Edge:        edge.DefaultConfig(),
		Stream:      dlq.DefaultStreamConfig(),
		Writer:      dlq.DefaultWriterConfig(),
	}
	return c
}

// Validate reports everything wrong with cfg, the errors of every
// component joined: the identity, the bus, the edge, the dead-letter
// stream and writer, and the node's own (listener addresses, client
// authentication and its key files, the TLS pair, listeners that would
// serve open).
// A field that is wrong is named by its path in Config (Edge.QueueLen);
// the binary names its flag instead. It reads the key files but connects
// to nothing.
func (cfg Config) Validate() error {
	errs := check.NotNegative(nil, "DrainDelay", cfg.DrainDelay)
	errs = append(errs,
		cfg.Identity.Validate(),
		check.In("Bus", cfg.Bus.Validate()),
		check.In("Edge", cfg.Edge.Validate()),
		check.In("Stream", cfg.Stream.Validate()),
		check.In("Writer", cfg.Writer.Validate()))
	errs = append(errs, cfg.validateTLS()...)
	for _, l := range []struct{ field, addr string }{{"WSListen", cfg.WSListen}, {"TCPListen", cfg.TCPListen}, {"AdminListen", cfg.AdminListen}} {
		if _, _, err := net.SplitHostPort(l.addr); l.addr != "" && err != nil {
			errs = check.Field(errs, l.field, "is not an address: %v", err)
		}
	}
	_, err := authenticator(cfg)
	_, open := exposure(cfg)
	return errors.Join(append(errs, err, open)...)
}

// Node is a running edge node, for whoever started it in-process.
type Node struct {
	Server     *edge.Server
	Bus        *bus.Conn
	Dispatcher *bus.Dispatcher
	Writer     *dlq.Writer
	Auth       string // the authentication mode: jwt-hs256, jwt-public-key, jwt-keys or development
	Tracing    bool   // pushes carrying a trace context are traced

	serving sync.WaitGroup // the listeners' accept loops

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

// Options is the fx application of an edge node; node, if not nil, is
// filled in as the application is built. A cfg that Validate refuses
// makes an application that fails with its errors before building
// anything.
func Options(cfg Config, log *zap.Logger, node *Node) fx.Option {
	if node == nil {
		node = &Node{}
	}
	// Every dead letter goes through the bus, which tells producers; the
	// edge must hand refused pushes to it, not return them.
	cfg.Edge.TryPush = edge.TryPushDeadLetters
	quiet := fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }) // errors come back from Start and Stop
	if err := cfg.Validate(); err != nil {
		return fx.Options(quiet, fx.Error(err))
	}
	open, _ := exposure(cfg) // allowed: Validate said so
	node.Tracing = cfg.Bus.TracerProvider != nil
	metrics := newRegistry(cfg.Identity)
	certs, err := newNodeTLS(cfg, log, metrics)
	if err != nil {
		return fx.Options(quiet, fx.Error(err))
	}
	h := &health{}
	return fx.Options(
		quiet,
		// First, so that it is said before anything listens.
		fx.Invoke(func() { warnOpen(log, open) }),
		fx.Supply(cfg.Identity, cfg.Bus, cfg.Edge, cfg.Stream, cfg.Writer, log, metrics),
		fx.Supply(fx.Annotate(metrics, fx.As(new(prometheus.Registerer)))),
		fx.Provide(
			func(lc fx.Lifecycle) (edge.Authenticator, error) {
				a, err := authenticator(cfg)
				if err == nil && a.keys != nil {
					err = watchKeys(lc, a.keys, log, metrics)
				}
				node.Auth = a.mode
				return a.auth, err
			},
			registry.New[edge.Conn],
		),
		busModule,
		dlqModule,
		// The admin listener before the rest, so that it stops after them:
		// /readyz answers "draining" while the node drains.
		fx.Invoke(func(lc fx.Lifecycle, c *bus.Conn, reg *registry.Registry[edge.Conn]) error {
			sessions := func() []protocol.SessionInfo { return bus.Sessions(c.Identity().Node, reg) }
			return node.serveAdmin(lc, cfg, certs.admin, metrics, h, c, sessions, log)
		}),
		edgeModule(cfg, certs.client, node, h, log),
		// After the admin listener: registering builds the server, the
		// dispatcher and the writer, and what is built after the listener
		// stops before it, so /readyz answers while they drain.
		fx.Invoke(registerMetrics),
		fx.Invoke(func(srv *edge.Server, c *bus.Conn, d *bus.Dispatcher, w *dlq.Writer) {
			node.Server, node.Bus, node.Dispatcher, node.Writer = srv, c, d, w
		}),
		// Registered last, so it runs first on stop: not ready, then the
		// drain delay, then the rest stops.
		fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.StopHook(func(ctx context.Context) {
				h.draining.Store(true)
				if cfg.DrainDelay > 0 {
					log.Info("not ready: waiting for load balancers to notice before closing clients", zap.Duration("drain_delay", cfg.DrainDelay))
					select {
					case <-time.After(cfg.DrainDelay):
					case <-ctx.Done():
					}
				}
			}))
		}),
	)
}

// newRegistry is the node's Prometheus registry, with the Go runtime's,
// the process's, the build's and the node's collectors.
func newRegistry(id push.Identity) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(version.Current()), nodeInfo(id))
	return reg
}

// serveAdmin registers the readiness gauge, and on start has the health
// checks ask JetStream and starts the admin listener, if configured;
// sessions lists what the node holds, for its /sessions.
func (n *Node) serveAdmin(lc fx.Lifecycle, cfg Config, tlsCfg *tls.Config, reg *prometheus.Registry, h *health, c *bus.Conn,
	sessions func() []protocol.SessionInfo, log *zap.Logger) error {
	h.conn = c
	if err := reg.Register(readyGauge(h)); err != nil {
		return err
	}
	var a *admin
	start := func(context.Context) error {
		js, err := jetstream.New(c.NC)
		if err != nil {
			return err
		}
		h.js = js
		if cfg.AdminListen == "" {
			return nil
		}
		if a, err = newAdmin(cfg.AdminListen, tlsCfg, cfg.Pprof, cfg.Cmdline, reg, h, sessions, log.Named("admin")); err != nil {
			return err
		}
		n.setAddr("admin", a.ln.Addr())
		return nil
	}
	lc.Append(hook(start, func(ctx context.Context) error {
		if a == nil {
			return nil
		}
		return a.stop(ctx)
	}))
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

// listener is one of the node's client listeners.
type listener struct {
	transport string // "websocket" or "tcp"
	ln        net.Listener
	serve     func(net.Listener) error
}

// listen opens the configured listeners, all or none, and serves them
// until srv shuts down; a listener that fails while serving stops the
// application. n.serving waits for them.
func (n *Node) listen(cfg Config, srv *edge.Server, sh fx.Shutdowner, log *zap.Logger) error {
	lns, err := openListeners(cfg, srv)
	if err != nil {
		return err
	}
	for _, l := range lns {
		n.setAddr(l.transport, l.ln.Addr())
		n.serving.Go(func() {
			if err := l.serve(l.ln); !errors.Is(err, edge.ErrServerClosed) {
				log.Error("listener failed; stopping", zap.String("transport", l.transport), zap.Error(err))
				_ = sh.Shutdown(fx.ExitCode(1))
			}
		})
	}
	return nil
}

// openListeners listens on the configured addresses; if one fails, those
// opened already are closed.
func openListeners(cfg Config, srv *edge.Server) ([]listener, error) {
	var lns []listener
	for _, l := range []struct {
		transport, addr string
		serve           func(net.Listener) error
	}{{"websocket", cfg.WSListen, srv.ServeWebSocket}, {"tcp", cfg.TCPListen, srv.ServeTCP}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, open := range lns {
				_ = open.ln.Close()
			}
			return nil, fmt.Errorf("%s listener: %w", l.transport, err)
		}
		lns = append(lns, listener{l.transport, ln, l.serve})
	}
	return lns, nil
}

// clientAuth is the node's client authentication.
type clientAuth struct {
	auth edge.Authenticator
	mode string          // jwt-hs256, jwt-public-key, jwt-keys or development
	keys *token.Verifier // the verifier of key files to read again; nil for a fixed key
}

// authenticator picks client authentication from cfg.
func authenticator(cfg Config) (clientAuth, error) {
	opts := verifyOptions(cfg)
	keyFiles := cfg.JWTKeysDir != "" || cfg.JWTJWKSFile != ""
	switch {
	case cfg.JWTSecretFile != "" && cfg.JWTPublicKeyFile != "":
		return clientAuth{}, &check.FieldError{Field: "JWTSecretFile", With: "JWTPublicKeyFile", Problem: "exclude each other: give one"}
	case keyFiles && cfg.JWTSecretFile+cfg.JWTPublicKeyFile != "":
		return clientAuth{}, &check.FieldError{Field: "JWTKeysDir", With: "JWTSecretFile", Problem: "exclude each other: a key directory or JWKS file holds every key, secrets included"}
	case keyFiles:
		v, err := token.NewKeyFiles(cfg.JWTKeysDir, cfg.JWTJWKSFile, opts...)
		a, err := bearer(v, keyFileError("JWTKeysDir", err), "jwt-keys")
		a.keys = v
		return a, err
	case cfg.JWTSecretFile != "":
		b, err := token.ReadSecretFile(cfg.JWTSecretFile)
		if err != nil {
			return clientAuth{}, keyFileError("JWTSecretFile", cmp.Or(errors.Unwrap(err), err))
		}
		v, err := token.NewHS256(b, opts...)
		return bearer(v, keyFileError("JWTSecretFile", err), "jwt-hs256")
	case cfg.JWTPublicKeyFile != "":
		b, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return clientAuth{}, keyFileError("JWTPublicKeyFile", err)
		}
		v, err := token.NewPublicKey(b, opts...)
		return bearer(v, keyFileError("JWTPublicKeyFile", err), "jwt-public-key")
	}
	for _, addr := range []string{cfg.WSListen, cfg.TCPListen} {
		if offLoopback(addr) {
			return clientAuth{}, fmt.Errorf("listener %s is not on loopback: configure a JWT secret, public key or key directory (development mode serves loopback only)", addr)
		}
	}
	return clientAuth{auth: edge.DevAuth{}, mode: "development"}, nil
}

// verifyOptions are the token checks cfg asks for beyond the signature
// and exp.
func verifyOptions(cfg Config) []token.Option {
	var opts []token.Option
	if cfg.JWTAudience != "" {
		opts = append(opts, token.WithAudience(cfg.JWTAudience))
	}
	if cfg.JWTIssuer != "" {
		opts = append(opts, token.WithIssuer(cfg.JWTIssuer))
	}
	return opts
}

// keyFileError is err, if any, about the key file of field.
func keyFileError(field string, err error) error {
	if err == nil {
		return nil
	}
	return &check.FieldError{Field: field, Problem: "is not usable: " + err.Error()}
}

// bearer is the authenticator of a token verifier, if it could be made.
func bearer(v *token.Verifier, err error, mode string) (clientAuth, error) {
	if err != nil {
		return clientAuth{}, err
	}
	return clientAuth{auth: edge.BearerAuth(v), mode: mode}, nil
}

// offLoopback says whether addr is an address, and not on loopback: one
// that is not an address is Validate's to report, and only as that.
func offLoopback(addr string) bool {
	_, _, err := net.SplitHostPort(addr)
	return err == nil && !loopback(addr)
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
// returned function, which drains within ctx. opts are added to the
// node's application (AddHooks, say). If the node does not start, Run
// returns why, having stopped whatever had started.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...fx.Option) (*Node, func(context.Context) error, error) {
	node := &Node{}
	app := fx.New(Options(cfg, log, node), fx.Options(opts...))
	// fx stops waiting for the start hooks when the context it has ends,
	// and leaves them and its rollback running; so it gets one that does
	// not end, and the hooks ctx itself (see hook).
	if err := app.Start(context.WithValue(context.WithoutCancel(ctx), runContext{}, ctx)); err != nil {
		return nil, nil, err
	}
	return node, app.Stop, nil
}
