package edge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// bombs are hooks and a handler that panic for sessions named bomb-*.
func bombs(closed chan<- string) edge.Options {
	explode := func(c *edge.Conn, where string) {
		if c.Session() == "bomb-"+where {
			panic("boom in " + where)
		}
	}
	return edge.Options{
		Hooks: edge.Hooks{
			OnConnect:       func(c *edge.Conn) error { explode(c, "connect"); return nil },
			OnProtocolError: func(c *edge.Conn, _ *edge.ProtocolError) { explode(c, "reader") },
			OnCommandEnd:    func(c *edge.Conn, _ *edge.Request, _ error) { explode(c, "request") },
			OnClose: func(c *edge.Conn, r wire.CloseReason, _ error) {
				closed <- c.Session() + " " + string(r)
				explode(c, "close")
			},
		},
		Handlers: map[string]edge.Handler{
			"echo": echo,
			"boom": func(context.Context, *edge.Request) (edge.Response, error) { panic("boom in a handler") },
		},
	}
}

// A panic on a connection's goroutines (handshake, reader, request) closes
// that connection only, and is logged and counted: the node and its other
// sessions carry on.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	closed := make(chan string, 16)
	o := bombs(closed)
	reg := withMetrics(t, &o)
	core, logs := observer.New(zap.ErrorLevel)
	o.Logger = zap.New(core)
	n := startNode(t, edge.DefaultConfig(), o)
	bystander := dial(t, n.ws, "ok", client.Options{})

	// The connect hook: the connection is refused as by a failing hook.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var ce *client.CloseError
	if _, err := client.Dial(ctx, n.tcp, client.Options{Session: "bomb-connect"}); !errors.As(err, &ce) || ce.Reason != wire.CloseShutdown {
		t.Fatalf("dial with a panicking connect hook: %v; want close reason shutdown", err)
	}
	wantClosed(t, closed, "bomb-connect shutdown")

	// The reader: a frame the client may not send fires the protocol-error
	// hook on the reader goroutine.
	r := rawTCP(t, n, "bomb-reader")
	r.send(t, wire.Frame{Type: wire.TypePush, ID: "x"})
	wantCloseFrame(t, r, wire.CloseProtocol)
	wantClosed(t, closed, "bomb-reader protocol")

	// A request: the command-end hook panics on the request's goroutine.
	c := dial(t, n.tcp, "bomb-request", client.Options{})
	for range c.Request(ctx, "echo", []byte("hi")) { // its end may be cut off by the close
	}
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("the connection stayed open after its command-end hook panicked")
	}
	if err := c.Err(); !errors.As(err, &ce) || ce.Reason != wire.CloseProtocol {
		t.Fatalf("after a panicking command-end hook: %v; want close reason protocol", err)
	}
	wantClosed(t, closed, "bomb-request protocol")

	// A handler's panic fails its request; the connection stays.
	h := dial(t, n.ws, "handler", client.Options{})
	var re *client.RequestError
	for _, err := range h.Request(ctx, "boom", nil) {
		if !errors.As(err, &re) || re.Code != wire.CodeInternal {
			t.Fatalf("boom: %v; want error internal", err)
		}
	}
	if _, err := collect(t, h.Request(ctx, "echo", []byte("still"))); err != nil {
		t.Fatalf("echo after a handler panic: %v", err)
	}

	// The close hook, at the very end of the reader goroutine.
	cl := dial(t, n.tcp, "bomb-close", client.Options{})
	done := n.handle(t, "bomb-close").Done()
	_ = cl.Close()
	wantClosed(t, closed, "bomb-close normal")
	select { // after the close hook's panic
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("a connection whose close hook panicked never ended")
	}

	if err := n.handle(t, "ok").TryPush(push.High, pushOf("after", "all that")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, bystander); f.ID != "after" {
		t.Fatalf("bystander got %q; want push after", f.ID)
	}
	for where, want := range map[string]float64{
		edge.PanicHandshake: 1, edge.PanicReader: 2, edge.PanicRequest: 2,
	} {
		if got := counter(t, reg, "pushfabric_connection_panics_total", "goroutine", where); got != want {
			t.Errorf("panics on %s goroutines: %v; want %v", where, got, want)
		}
	}
	entries := logs.FilterMessage("panic contained on a connection goroutine").All()
	if len(entries) != 5 {
		t.Fatalf("%d panics logged; want 5", len(entries))
	}
	for _, e := range entries {
		if stack, _ := e.ContextMap()["stack"].(string); !strings.Contains(stack, "panic_test.go") {
			t.Fatalf("panic logged without its stack: %v", e.ContextMap())
		}
	}
}

func wantClosed(t *testing.T, closed <-chan string, want string) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case got := <-closed:
			if got == want {
				return
			}
			if strings.HasPrefix(got, "ok ") {
				t.Fatalf("the bystander closed: %s", got)
			}
		case <-timeout:
			t.Fatalf("no close %q", want)
		}
	}
}

func wantCloseFrame(t *testing.T, r *rawConn, reason wire.CloseReason) {
	t.Helper()
	for {
		f := r.next(t)
		if f.Type == wire.TypeClose {
			if f.Name != string(reason) {
				t.Fatalf("close reason %q; want %q", f.Name, reason)
			}
			return
		}
	}
}

// A handler's panic is logged once, with its stack, not again as a failed
// request.
func TestHandlerPanicIsLoggedOnce(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	n := startNode(t, edge.DefaultConfig(), edge.Options{Logger: zap.New(core), Handlers: map[string]edge.Handler{
		"boom": func(context.Context, *edge.Request) (edge.Response, error) { panic("boom in a handler") },
	}})
	c := dial(t, n.tcp, "handler", client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var re *client.RequestError
	for _, err := range c.Request(ctx, "boom", nil) {
		if !errors.As(err, &re) || re.Code != wire.CodeInternal {
			t.Fatalf("boom: %v; want error internal", err)
		}
	}
	entries := logs.FilterMessage("panic contained on a connection goroutine").All()
	if len(entries) != 1 {
		t.Fatalf("the panic logged %d times; want once", len(entries))
	}
	if m := entries[0].ContextMap(); m["method"] != "boom" || m["request"] == nil {
		t.Errorf("the panic logged as %v; want its method and request id", m)
	}
	if failed := logs.FilterMessage("request failed").All(); len(failed) > 0 {
		t.Errorf("the panic logged again as a failed request: %v", failed[0].ContextMap())
	}
}
