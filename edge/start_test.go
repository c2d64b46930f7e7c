package edge_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/edge"
)

// A server starts nothing until Start: NewServer runs no goroutine, Serve
// refuses before Start, and a server shut down does not start again.
func TestServerStartsOnlyWhenStarted(t *testing.T) {
	before := goleak.IgnoreCurrent()
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
	if err := srv.ServeTCP(listen(t)); !errors.Is(err, edge.ErrNotStarted) {
		t.Fatalf("ServeTCP before Start: %v; want ErrNotStarted", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of a server never started: %v", err)
	}
	if err := srv.Start(context.Background()); !errors.Is(err, edge.ErrServerClosed) {
		t.Fatalf("Start after Shutdown: %v; want ErrServerClosed", err)
	}
}
