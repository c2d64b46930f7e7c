package edge

import (
	"context"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/registry"
)

// Params are what [Module] takes from the application.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Logger    *zap.Logger
	Auth      Authenticator
	Registry  *registry.Registry[Conn]
	Sink      DeadLetterSink     `optional:"true"`
	Hooks     Hooks              `optional:"true"`
	Handlers  map[string]Handler `optional:"true"`
	// Fallback answers methods Handlers has not (bus.Module provides one
	// that forwards them over NATS).
	Fallback Handler  `name:"fallback" optional:"true"`
	Metrics  *Metrics `optional:"true"`
	Node     string   `name:"node" optional:"true"`
}

// Module provides the *Server, built from [Params], and shuts it down when
// the application stops. It needs a *registry.Registry[Conn] (see
// registry.Module). Serving listeners is the application's to start.
var Module = fx.Module("edge", fx.Provide(newModuleServer))

func newModuleServer(p Params) (*Server, error) {
	srv, err := NewServer(Options{
		Config: p.Config, Logger: p.Logger.Named("edge"), Sink: p.Sink, Hooks: p.Hooks,
		Handlers: p.Handlers, Fallback: p.Fallback, Auth: p.Auth, Registry: p.Registry, Node: p.Node, Metrics: p.Metrics,
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(func(ctx context.Context) error { return srv.Shutdown(ctx) }))
	return srv, nil
}
