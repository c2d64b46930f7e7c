package edge

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"
)

// Shutdown does not wait for clients stuck in their handshake.
func TestShutdownCutsHandshakes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HandshakeTimeout = time.Hour
	srv, err := NewServer(Options{Config: cfg, Auth: DevAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	var addrs []string
	for _, serve := range []func(net.Listener) error{srv.ServeTCP, srv.ServeWebSocket} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { served <- serve(ln) }()
	}
	for _, addr := range addrs {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for srv.handshakes() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes in progress; want 2", srv.handshakes())
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stopped := make(chan error)
	go func() { stopped <- srv.Shutdown(ctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown is waiting for handshakes that will never finish")
	}
	for range 2 {
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("serve: %v", err)
		}
	}
}

func (s *Server) handshakes() int { return s.shaking.len() }
