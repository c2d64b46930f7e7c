package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/push"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDialErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for addr, want := range map[string]string{
		"http://127.0.0.1:1": `scheme "http": want ws or tcp`,
		"::bad":              "missing protocol scheme",
	} {
		if _, err := client.Dial(ctx, addr, client.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Dial(%q) = %v; want an error containing %q", addr, err, want)
		}
	}
	// Nothing listens on a port just closed.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := client.Dial(ctx, "tcp://"+addr, client.Options{Session: "s"}); err == nil {
		t.Error("Dial to a closed port succeeded")
	}
}

// A server that never answers the handshake: Dial gives up with ctx.
func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = client.Dial(ctx, "tcp://"+ln.Addr().String(), client.Options{Session: "s"})
	if err == nil {
		t.Fatal("Dial succeeded without a welcome")
	}
	(<-accepted).Close()
}

// Close ends the reader goroutine; Recv and Err then report the end.
func TestCloseAndErr(t *testing.T) {
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.ServeTCP(ln) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-served
	}()
	c, err := client.Dial(context.Background(), "tcp://"+ln.Addr().String(), client.Options{Session: "me"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Session() != "me" || c.Node() != "edge" || c.Err() != nil {
		t.Fatalf("session %q node %q err %v", c.Session(), c.Node(), c.Err())
	}
	c.Close()
	if _, err := c.Recv(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Recv after Close: %v; want ErrClosed", err)
	}
	for _, err := range c.Request(context.Background(), "any", nil) {
		if err == nil {
			t.Fatal("Request on a closed connection yielded a frame")
		}
	}
}

// written counts the pushes the edge wrote.
type written struct{ n atomic.Int32 }

func (w *written) Written(*edge.Envelope)       { w.n.Add(1) }
func (w *written) Dead(edge.DeadLetter)         {}
func (w *written) Moved(string, *edge.Envelope) {}

// Close returns even when pushes wait for a Recv that never comes: the
// reader, blocked on a full buffer, stops waiting.
func TestCloseWithPushesNotReceived(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	c, err := client.Dial(t.Context(), n.tcp, client.Options{Session: "me", Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := &written{}
	for i := range 3 {
		e := edge.Envelope{Frame: edge.Frame{ID: fmt.Sprint(i)}, Receipt: w}
		if err := n.srv.Registry().Get("me").TryPush(push.High, e); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the pushes written", func() bool { return w.n.Load() == 3 })
	closed := make(chan struct{})
	go func() {
		_ = c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close hung on pushes nobody received")
	}
}
