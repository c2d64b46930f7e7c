package app_test

import (
	"context"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge"
)

// A node run in-process with a hook of the program's own, as
// docs/running.md shows it (that page's Go block is this function's body,
// kept so by tests.TestRunningRecipes).
func ExampleRun() {
	_ = func(ctx context.Context, cfg app.Config, log *zap.Logger) error {
		node, stop, err := app.Run(ctx, cfg, log, app.AddHooks(func(log *zap.Logger) edge.Hooks {
			return edge.Hooks{OnConnect: func(c *edge.Conn) error {
				log.Info("client connected", zap.String("session", c.Session()))
				return nil
			}}
		}))
		if err != nil {
			return err // nothing is left running
		}
		defer stop(ctx)
		_ = node
		return nil
	}
}
