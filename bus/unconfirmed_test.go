package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/registry"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A node on a JetStream-enabled server: its dispatcher, dead-letter sink
// and edge server, all stopped at cleanup.
func startNode(t testing.TB, url string) (*edge.Server, *bus.Dispatcher) {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.URLs = []string{url}
	c, err := connect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dlq.NewWriter(c.Identity(), dlq.DefaultWriterConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, func(ctx context.Context) error { return w.Start(ctx, c.NC) }, w.Stop)
	reg := registry.New[edge.Conn]()
	d, err := bus.NewDispatcher(c, reg, bus.NewSink(w, c, nil, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, d.Start, d.Stop)
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}, Registry: reg, Hooks: d.Hooks()})
	if err != nil {
		t.Fatal(err)
	}
	start(t, srv.Start, srv.Shutdown)
	return srv, d
}

// requestReceived sends a Push-Ack: received push for session id and
// returns the inbox its answer comes to.
func requestReceived(t *testing.T, nc *nats.Conn, session, id string) *nats.Subscription {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: protocol.PushSubject(protocol.DefaultPrefix, session, "high"), Reply: inbox, Data: []byte(id),
		Header: nats.Header{protocol.HeaderID: {id}, protocol.HeaderAck: {protocol.AckReceived}}}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	return sub
}

func answer(t *testing.T, sub *nats.Subscription) protocol.Ack {
	t.Helper()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a, err := protocol.ParseAck(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The bus answers a receipt-push received when its client confirms it.
// One whose connection ends unconfirmed is handed over to the session's
// subject; with no node to take it (no responders), it is dead-lettered
// unconfirmed, not replaced, and its producer is told so.
func TestUnconfirmedHandedOverThenDeadLettered(t *testing.T) {
	s := natstest.Server(t)
	if _, err := dlq.EnsureStream(t.Context(), natstest.JetStream(t, s), protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	srv, d := startNode(t, s.ClientURL())
	nc := natstest.Connect(t, s)

	confirms := connectSession(t, srv, "alice")
	sub := requestReceived(t, nc, "alice", "a-1")
	if f, err := confirms.c.Recv(t.Context()); err != nil || f.ID != "a-1" || !f.WantsReceipt {
		t.Fatalf("recv: %v, %s (wants a receipt: %v); want a-1, asking for one", err, f.ID, f.WantsReceipt)
	}
	if a := answer(t, sub); a.Status != protocol.StatusReceived || a.ID != "a-1" {
		t.Fatalf("answer %+v; want received for a-1", a)
	}

	silent, err := client.Dial(t.Context(), "tcp://"+confirms.ln.Addr().String(), client.Options{Session: "bob", ManualReceipts: true})
	if err != nil {
		t.Fatal(err)
	}
	sub = requestReceived(t, nc, "bob", "b-1")
	if f, err := silent.Recv(t.Context()); err != nil || f.ID != "b-1" {
		t.Fatalf("recv: %v, %s; want b-1", err, f.ID)
	}
	_ = silent.Close()
	if a := answer(t, sub); a.Status != protocol.StatusDead || a.Reason != string(push.ReasonUnconfirmed) {
		t.Fatalf("answer %+v; want dead unconfirmed", a)
	}
	if h := d.Stats().Handovers; h[bus.HandoverNoResponders] != 1 {
		t.Fatalf("hand-overs %v; want one with no responders", h)
	}
	store, err := dlq.Open(t.Context(), natstest.JetStream(t, s), protocol.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var letters []dlq.Entry
	for deadline := time.Now().Add(10 * time.Second); len(letters) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		letters, _ = store.List(t.Context(), dlq.Filter{})
	}
	if len(letters) != 1 || letters[0].ID() != "b-1" || letters[0].Reason() != push.ReasonUnconfirmed || letters[0].Session() != "bob" {
		t.Fatalf("dead letters %+v; want b-1 for bob, unconfirmed", letters)
	}
}

// A push id that is not UTF-8 is refused invalid: the protocol's strings
// are UTF-8, and a client that decodes them (every browser's) could
// neither drop its repeats nor confirm it by the id it was sent with, so
// a receipt-push would wait out its receipt timeout though shown.
func TestPushIDNotUTF8IsInvalid(t *testing.T) {
	s := natstest.Server(t)
	if _, err := dlq.EnsureStream(t.Context(), natstest.JetStream(t, s), protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	srv, _ := startNode(t, s.ClientURL())
	nc := natstest.Connect(t, s)
	alice := connectSession(t, srv, "alice")

	bad := requestReceived(t, nc, "alice", "a-\xff\xfe")
	if a := answer(t, bad); a.Status != protocol.StatusDead || a.Reason != string(push.ReasonInvalid) {
		t.Fatalf("answer %+v; want dead invalid", a)
	}
	good := requestReceived(t, nc, "alice", "a-2")
	if f, err := alice.c.Recv(t.Context()); err != nil || f.ID != "a-2" {
		t.Fatalf("recv: %v, %q; want a-2 first", err, f.ID)
	}
	if a := answer(t, good); a.Status != protocol.StatusReceived {
		t.Fatalf("answer %+v; want received", a)
	}
}
