package dlq

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the *Writer on the application's *nats.Conn, and makes
// sure the stream exists with the configured limits when the application
// starts. It needs a StreamConfig, a WriterConfig and a *zap.Logger. On stop
// the writer writes what it holds.
var Module = fx.Module("dlq", fx.Provide(newModuleWriter))

func newModuleWriter(lc fx.Lifecycle, nc *nats.Conn, scfg StreamConfig, wcfg WriterConfig, log *zap.Logger) (*Writer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ensure := func(ctx context.Context) error {
		_, err := EnsureStream(ctx, js, scfg)
		return err
	}
	wcfg.Ensure = ensure
	w, err := NewWriter(nc, wcfg, log.Named("dlq"))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: ensure, OnStop: w.Close})
	return w, nil
}
