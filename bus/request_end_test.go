package bus_test

import (
	"context"
	"errors"
	"iter"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Every forwarded request fires the edge's OnCommandEnd exactly once:
// completed, no handler, timed out, canceled, its client gone, or cut by
// the node shutting down.
func TestForwardedRequestsEndOnce(t *testing.T) {
	s := natstest.Server(t)
	cfg := bus.DefaultConfig()
	cfg.URLs, cfg.RequestTimeout = []string{s.ClientURL()}, 200*time.Millisecond
	c, err := connect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := bus.NewForwarder(c, cfg, bus.NewMetrics(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	var mu sync.Mutex
	ends := map[string]int{} // session/request id → command ends
	hooks := edge.Hooks{OnCommandEnd: func(c *edge.Conn, req *edge.Request, _ error) {
		mu.Lock()
		ends[c.Session()+"/"+req.ID]++
		mu.Unlock()
	}}
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}, Hooks: hooks, Fallback: f.Handler()})
	if err != nil {
		t.Fatal(err)
	}

	nc := natstest.Connect(t, s)
	stop := make(chan struct{})
	streams := func(ctx context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			if string(req.Payload) == "one" {
				yield(backend.Reply{Payload: []byte("x")}, nil)
				return
			}
			if yield(backend.Reply{Payload: []byte("first")}, nil) {
				select { // then nothing until the test ends
				case <-stop:
				case <-ctx.Done():
				}
			}
		}
	}
	svc, err := backend.Serve(nc, "m", streams, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop(context.Background()) }()
	defer close(stop)

	ctx := context.Background()
	alice := connectSession(t, srv, "alice")
	for _, err := range alice.c.Request(ctx, "m", []byte("one")) { // 1: completed
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range alice.c.Request(ctx, "nobody", nil) { // 2: no_handler
		if err == nil {
			t.Fatal("a response from nobody")
		}
	}
	for _, err := range alice.c.Request(ctx, "m", nil) { // 3: first, then timeout
		var re *client.RequestError
		if err != nil && (!errors.As(err, &re) || re.Code != wire.CodeTimeout) {
			t.Fatal(err)
		}
	}
	for range alice.c.Request(ctx, "m", nil) { // 4: canceled after the first
		break
	}
	// 5: the client leaves mid-stream; 6: in flight when the node stops.
	bob := connectSession(t, srv, "bob")
	next, stopBob := iter.Pull2(bob.c.Request(ctx, "m", nil))
	if _, err, _ := next(); err != nil {
		t.Fatal(err)
	}
	bob.close()
	stopBob()
	carol := connectSession(t, srv, "carol")
	next, stopCarol := iter.Pull2(carol.c.Request(ctx, "m", nil))
	defer stopCarol()
	if _, err, _ := next(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil { // waits for every request to end
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"alice/1", "alice/2", "alice/3", "alice/4", "bob/1", "carol/1"}
	if len(ends) != len(want) {
		t.Fatalf("command ends %v; want one each for %v", ends, want)
	}
	for _, k := range want {
		if ends[k] != 1 {
			t.Fatalf("command ends %v; want one each for %v", ends, want)
		}
	}
}
