package backend_test

import (
	"context"
	"iter"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// New checks the method and the options and subscribes to nothing: a
// request reaches the service only once it has started.
func TestServiceServesOnlyOnceStarted(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	h := func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.One(backend.Reply{Payload: []byte("ok")})
	}
	for _, bad := range []struct {
		method string
		o      backend.Options
	}{{"a.b", backend.Options{}}, {">", backend.Options{}}, {"m", backend.Options{Prefix: "p q"}}} {
		if _, err := backend.New(nc, bad.method, h, bad.o); err == nil {
			t.Errorf("New took method %q with prefix %q", bad.method, bad.o.Prefix)
		}
	}
	before := goleak.IgnoreCurrent()
	svc, err := backend.New(nc, "m", h, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := nc.NumSubscriptions(); n != 0 {
		t.Fatalf("%d subscriptions before Start; want none", n)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ask(t, nc, "m", "alice", nil)); string(m.Data) != "ok" {
		t.Fatalf("reply %q; want ok", m.Data)
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}
