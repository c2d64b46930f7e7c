package edge

import (
	"context"
	"net"
	"testing"
	"time"
)

// serveWebSocket starts a server with o and serves WebSocket on a
// loopback port until the test ends; it returns the address and the
// server.
func serveWebSocket(t *testing.T, o Options) (string, *Server) {
	t.Helper()
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeWebSocket(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-served
	})
	return ln.Addr().String(), srv
}
