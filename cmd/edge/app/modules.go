package app

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/clients/js"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/registry"
)

// hooksGroup is the fx value group of the edge.Hooks an application adds
// to the node's (see AddHooks).
const hooksGroup = "edge_hooks"

// AddHooks adds edge hooks to the node: constructor returns an edge.Hooks,
// taking what it needs from the node's application as its parameters
// (a *zap.Logger, the *bus.Conn…), and is annotated into the value group
// "edge_hooks", which an application may also provide to directly. Every
// Hooks of the group runs after the dispatcher's, in no particular order
// among themselves: give one Hooks made with edge.JoinHooks where the
// order matters.
//
//	app.Run(ctx, cfg, log, app.AddHooks(func(log *zap.Logger) edge.Hooks {
//		return edge.Hooks{OnConnect: func(c *edge.Conn) error { log.Info("hello", zap.String("session", c.Session())); return nil }}
//	}))
func AddHooks(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.ResultTags(`group:"`+hooksGroup+`"`)))
}

// runContext is the key of the context Run started the node with, in the
// context it gives fx (see Run and hook).
type runContext struct{}

// hook is the fx hook of a component's Start and Stop. Under Run both get
// Run's context (for a rollback, stop gets it too: ended, perhaps, which
// makes it quick); otherwise the context fx gives them.
func hook(start, stop func(context.Context) error) fx.Hook {
	return fx.Hook{
		OnStart: func(ctx context.Context) error { return start(runCtx(ctx)) },
		OnStop:  func(ctx context.Context) error { return stop(runCtx(ctx)) },
	}
}

func runCtx(ctx context.Context) context.Context {
	if run, ok := ctx.Value(runContext{}).(context.Context); ok {
		return run
	}
	return ctx
}

// busModule provides the node's NATS connection (*bus.Conn), the bus
// metrics, the dead-letter sink (also as the edge's edge.DeadLetterSink),
// the dispatcher and the request forwarder, none of them started. The
// connection starts first and stops last (draining, then the embedded
// server); the dispatcher and the forwarder start after it, and stop after
// the edge server, which depends on them.
var busModule = fx.Module("bus",
	fx.Provide(
		newConn,
		bus.NewMetrics,
		func(w *dlq.Writer, c *bus.Conn, m *bus.Metrics, log *zap.Logger) *bus.Sink {
			return bus.NewSink(w, c, m, log)
		},
		func(s *bus.Sink) edge.DeadLetterSink { return s },
		newDispatcher,
		newForwarder,
	),
)

func newConn(lc fx.Lifecycle, id push.Identity, cfg bus.Config, log *zap.Logger) (*bus.Conn, error) {
	c, err := bus.New(id, cfg, log.Named("bus"))
	if err != nil {
		return nil, err
	}
	lc.Append(hook(c.Start, c.Stop))
	return c, nil
}

func newDispatcher(lc fx.Lifecycle, c *bus.Conn, reg *registry.Registry[edge.Conn], s *bus.Sink, log *zap.Logger) (*bus.Dispatcher, error) {
	d, err := bus.NewDispatcher(c, reg, s, log.Named("dispatch"))
	if err != nil {
		return nil, err
	}
	lc.Append(hook(d.Start, d.Stop))
	return d, nil
}

func newForwarder(lc fx.Lifecycle, c *bus.Conn, m *bus.Metrics, log *zap.Logger) (*bus.Forwarder, error) {
	f, err := bus.NewForwarder(c, m, log.Named("requests"))
	if err != nil {
		return nil, err
	}
	lc.Append(hook(f.Start, f.Stop))
	return f, nil
}

// dlqModule provides the dead-letter *dlq.Writer on the node's connection.
// On start the stream is made, or its limits applied, before the writer
// starts; on stop the writer writes what it holds.
var dlqModule = fx.Module("dlq", fx.Provide(newWriter))

type writerParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Identity  push.Identity
	Conn      *bus.Conn
	Stream    dlq.StreamConfig
	Writer    dlq.WriterConfig
	Log       *zap.Logger
}

func newWriter(p writerParams) (*dlq.Writer, error) {
	ensure := func(ctx context.Context) error {
		js, err := jetstream.New(p.Conn.NC)
		if err != nil {
			return err
		}
		s, err := dlq.EnsureStream(ctx, js, p.Identity.Prefix, p.Stream)
		if err == nil {
			p.Log.Info("dead-letter stream ready", zap.String("stream", protocol.DeadLetterStream),
				zap.Int("replicas", s.CachedInfo().Config.Replicas))
		}
		return err
	}
	wcfg := p.Writer
	wcfg.Ensure = ensure
	w, err := dlq.NewWriter(p.Identity, wcfg, p.Log.Named("dlq"))
	if err != nil {
		return nil, err
	}
	late := lateEnsure{ensure: ensure, conn: p.Conn, log: p.Log.Named("dlq")}
	start := func(ctx context.Context) error {
		if !p.Conn.NC.IsConnected() { // retrying its first connect: the stream is made once it is up
			late.start()
		} else if err := ensure(ctx); err != nil {
			return err
		}
		return w.Start(ctx, p.Conn.NC)
	}
	stop := func(ctx context.Context) error {
		late.stop()
		return w.Stop(ctx)
	}
	p.Lifecycle.Append(hook(start, stop))
	return w, nil
}

// lateEnsure makes the dead-letter stream, or applies its limits, once a
// connection whose first connect failed is up (bus.Config.ConnectRetry).
// Until then dead letters wait in the writer.
type lateEnsure struct {
	ensure func(context.Context) error
	conn   *bus.Conn
	log    *zap.Logger
	cancel context.CancelFunc // set by start
	done   sync.WaitGroup     // the goroutine start started
}

// start waits, on a goroutine of its own, for the connection and then
// ensures the stream, until stop.
func (l *lateEnsure) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.done.Go(func() {
		select {
		case <-l.conn.Connected():
		case <-ctx.Done():
			return
		}
		if err := l.ensure(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("dead-letter stream not made; the writer makes it when a dead letter finds it missing", zap.Error(err))
		}
	})
}

// stop ends what start started and waits for it.
func (l *lateEnsure) stop() {
	if l.cancel != nil {
		l.cancel()
		l.done.Wait()
	}
}

// pages are the pages the WebSocket listener serves: the demo's with
// Config.Demo, else none.
func pages(cfg Config) edge.PageMux {
	if !cfg.Demo {
		return nil
	}
	return js.Demo()
}

// serverParams are what the edge server takes from the application.
type serverParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Identity   push.Identity
	Config     edge.Config
	Logger     *zap.Logger
	Auth       edge.Authenticator
	Registry   *registry.Registry[edge.Conn]
	Sink       edge.DeadLetterSink
	Dispatcher *bus.Dispatcher
	Hooks      []edge.Hooks `group:"edge_hooks"`
	// Handlers answer requests in the process; the forwarder answers the
	// methods they do not, over NATS.
	Handlers  map[string]edge.Handler `optional:"true"`
	Forwarder *bus.Forwarder
}

// edgeModule provides the *edge.Server, with the dispatcher's hooks and
// the application's joined, and serves the node's listeners with it, over
// TLS if tlsCfg is not nil. On start the server starts and the listeners
// open (all or none); on stop the server shuts down, which ends them, and
// the accept loops are waited for.
func edgeModule(cfg Config, tlsCfg *tls.Config, node *Node, h *health, log *zap.Logger) fx.Option {
	return fx.Module("edge", fx.Provide(func(p serverParams) (*edge.Server, error) {
		srv, err := edge.NewServer(edge.Options{
			Config: p.Config, Logger: p.Logger.Named("edge"), Sink: p.Sink,
			Hooks:    edge.JoinHooks(append([]edge.Hooks{p.Dispatcher.Hooks()}, p.Hooks...)...),
			Handlers: p.Handlers, Fallback: p.Forwarder.Handler(), Auth: p.Auth, Registry: p.Registry,
			Node: p.Identity.Node, TLS: tlsCfg, Pages: pages(cfg),
		})
		if err != nil {
			return nil, err
		}
		h.srv = srv
		start := func(ctx context.Context) error {
			if err := srv.Start(ctx); err != nil {
				return err
			}
			if err := node.listen(cfg, srv, p.Shutdowner, log); err != nil {
				return errors.Join(err, srv.Shutdown(ctx))
			}
			h.serving.Store(true)
			return nil
		}
		p.Lifecycle.Append(hook(start, func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			node.serving.Wait()
			return err
		}))
		return srv, nil
	}))
}
