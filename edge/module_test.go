package edge_test

import (
	"context"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/registry"
)

// The fx module wires a server that serves and is shut down with the app.
func TestModule(t *testing.T) {
	var srv *edge.Server
	app := fxtest.New(t,
		registry.Module[edge.Conn](),
		edge.Module,
		fx.Supply(edge.DefaultConfig(), zap.NewNop()),
		fx.Provide(func() edge.Authenticator { return edge.DevAuth{} }),
		fx.Populate(&srv),
	)
	app.RequireStart()
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTCP(ln) }()
	c, err := client.Dial(context.Background(), "tcp://"+ln.Addr().String(), client.Options{Session: "fx"})
	if err != nil {
		t.Fatal(err)
	}
	app.RequireStop()
	<-c.Done()
	if !isClose(c.Err(), "shutdown") {
		t.Fatalf("client ended with %v; want close reason shutdown", c.Err())
	}
	if err := <-served; err != edge.ErrServerClosed {
		t.Fatalf("serve: %v", err)
	}
}
