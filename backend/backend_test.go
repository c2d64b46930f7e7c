package backend_test

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoredGoroutines()...) }

// ask publishes a request for method as an edge node would and returns a
// subscription on its reply subject.
func ask(t *testing.T, nc *nats.Conn, method, session string, payload []byte) *nats.Subscription {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	err = nc.PublishMsg(&nats.Msg{Subject: protocol.RequestSubject("push", method), Reply: inbox, Data: payload,
		Header: nats.Header{protocol.HeaderSession: []string{session}, protocol.HeaderRequestID: []string{"r1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func next(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func serve(t *testing.T, nc *nats.Conn, method string, h backend.Handler) *backend.Service {
	t.Helper()
	svc, err := backend.New(nc, method, h, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return svc // Start has flushed: a request now reaches it
}

func TestRepliesAndTheirHeaders(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	var seen backend.Request
	svc := serve(t, nc, "feed", func(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		seen = *req
		return func(yield func(backend.Reply, error) bool) {
			if yield(backend.Reply{Payload: []byte("a"), ContentType: "text/plain"}, nil) {
				yield(backend.Reply{Payload: []byte("b")}, nil)
			}
		}
	})
	defer svc.Stop(context.Background())
	sub := ask(t, nc, "feed", "alice", []byte("q"))
	for _, want := range []struct{ data, stream, ctype string }{
		{"a", protocol.StreamMore, "text/plain"}, {"b", protocol.StreamMore, ""}, {"", protocol.StreamEnd, ""},
	} {
		m := next(t, sub)
		if string(m.Data) != want.data || m.Header.Get(protocol.HeaderStream) != want.stream ||
			m.Header.Get(protocol.HeaderContentType) != want.ctype {
			t.Fatalf("reply %q %v; want %+v", m.Data, m.Header, want)
		}
	}
	if seen.Session != "alice" || seen.ID != "r1" || seen.Method != "feed" || string(seen.Payload) != "q" {
		t.Fatalf("the handler saw %+v", seen)
	}
}

func TestErrors(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	var reported error
	svc, err := backend.New(nc, "x", func(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		if string(req.Payload) == "typed" {
			return backend.Fail(&backend.Error{Code: "not_found", Message: "no such thing"})
		}
		return backend.Fail(errors.New("secret details"))
	}, backend.Options{OnError: func(_ *backend.Request, err error) { reported = err }})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(context.Background())
	m := next(t, ask(t, nc, "x", "alice", []byte("typed")))
	if m.Header.Get(protocol.HeaderError) != "not_found" || string(m.Data) != "no such thing" {
		t.Fatalf("typed error: %q %v", m.Data, m.Header)
	}
	m = next(t, ask(t, nc, "x", "alice", []byte("other")))
	if m.Header.Get(protocol.HeaderError) != "internal" || string(m.Data) != "the request failed" {
		t.Fatalf("other error: %q %v", m.Data, m.Header)
	}
	if reported == nil || reported.Error() != "secret details" {
		t.Fatalf("OnError heard %v", reported)
	}
}

func TestStopWaitsThenCancels(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	started := make(chan struct{})
	svc := serve(t, nc, "slow", func(ctx context.Context, _ *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			close(started)
			<-ctx.Done()
			yield(backend.Reply{}, &backend.Error{Code: "unavailable", Message: "stopping"})
		}
	})
	sub := ask(t, nc, "slow", "alice", nil)
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no patience: handlers are canceled at once
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub); m.Header.Get(protocol.HeaderError) != "unavailable" {
		t.Fatalf("after Stop: %q %v", m.Data, m.Header)
	}
	// Nobody serves the method any more: NATS says so.
	_, err := nc.Request(protocol.RequestSubject("push", "slow"), nil, 5*time.Second)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("a request after Stop: %v", err)
	}
}
