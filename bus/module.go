package bus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/registry"
)

// connectTimeout bounds connecting, or starting the embedded server.
const connectTimeout = 30 * time.Second

// Module provides the node's NATS connection (*Conn and its *nats.Conn),
// the bus Metrics, the dead-letter Sink and the Dispatcher, and with them
// the edge.Hooks and edge.DeadLetterSink the edge server takes, and the
// Forwarder, whose handler is the edge's fallback (name:"fallback"). It needs a
// Config, a *zap.Logger, the session registry and a *dlq.Writer
// (dlq.Module). On stop, after the edge server has shut down, the
// dispatcher stops and the connection drains; the embedded server stops
// last.
var Module = fx.Module("bus",
	fx.Provide(
		newModuleConn,
		func(c *Conn) *nats.Conn { return c.NC },
		NewMetrics,
		func(w *dlq.Writer, c *Conn, cfg Config, m *Metrics, log *zap.Logger) *Sink {
			return NewSink(w, c.NC, cfg, m, log)
		},
		func(s *Sink) edge.DeadLetterSink { return s },
		newModuleDispatcher,
		func(d *Dispatcher) edge.Hooks { return d.Hooks() },
		newModuleForwarder,
		fx.Annotate(func(f *Forwarder) edge.Handler { return f.Handler() }, fx.ResultTags(`name:"fallback"`)),
	),
)

func newModuleConn(lc fx.Lifecycle, cfg Config, log *zap.Logger) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	c, err := Connect(ctx, cfg, log.Named("bus"))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(c.Close))
	return c, nil
}

func newModuleDispatcher(lc fx.Lifecycle, c *Conn, reg *registry.Registry[edge.Conn], s *Sink, log *zap.Logger) (*Dispatcher, error) {
	d, err := NewDispatcher(c, reg, s, log.Named("dispatch"))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(d.Stop))
	return d, nil
}

func newModuleForwarder(lc fx.Lifecycle, c *Conn, cfg Config, m *Metrics, log *zap.Logger) (*Forwarder, error) {
	f, err := NewForwarder(c, cfg, m, log.Named("requests"))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(f.Stop))
	return f, nil
}
