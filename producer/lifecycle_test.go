package producer_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// New checks the options and starts nothing; a producer pushes only
// between Start and Stop, and Stop leaves nothing running.
func TestProducerRunsBetweenStartAndStop(t *testing.T) {
	s := natstest.Server(t)
	if _, err := dlq.EnsureStream(t.Context(), natstest.JetStream(t, s), protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s)
	if _, err := producer.New(nc, producer.Options{Prefix: "a.b"}); err == nil {
		t.Fatal("New took the prefix a.b")
	}
	before := goleak.IgnoreCurrent()
	p, err := producer.New(nc, producer.Options{Name: "lifecycle"})
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
	if err := p.Publish("alice", push.High, []byte("x")); !errors.Is(err, producer.ErrNotRunning) {
		t.Fatalf("Publish before Start: %v; want ErrNotRunning", err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish("alice", push.High, []byte("x")); err != nil { // offline: dead-lettered
		t.Fatalf("Publish: %v", err)
	}
	for _, session := range []string{"all", "group", "a.b"} { // all would be a broadcast
		if err := p.Publish(session, push.High, []byte("x")); !errors.Is(err, push.ErrInvalidName) {
			t.Fatalf("Publish to session %q: %v; want refused, not a session's name", session, err)
		}
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Push(t.Context(), "alice", push.High, []byte("x")); !errors.Is(err, producer.ErrNotRunning) {
		t.Fatalf("Push after Stop: %v; want ErrNotRunning", err)
	}
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
}
