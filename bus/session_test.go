package bus_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
)

type session struct {
	c      *client.Conn
	served chan error
	ln     net.Listener
}

// connectSession serves srv on a loopback listener and connects a
// development-mode client holding name.
func connectSession(t testing.TB, srv *edge.Server, name string) *session {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &session{served: make(chan error, 1), ln: ln}
	go func() { s.served <- srv.ServeTCP(ln) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.c, err = client.Dial(ctx, "tcp://"+ln.Addr().String(), client.Options{Session: name}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()); <-s.served })
	return s
}

func (s *session) close() { _ = s.c.Close() }
