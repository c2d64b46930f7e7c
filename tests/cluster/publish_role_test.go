package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/push"
)

// Publish under the shipped producer role, and PublishGroup to all under
// the broadcast role: their marks come back (Stop ends within a round
// trip, not the hour of the status window), an offline push is parked,
// and the server refuses nothing either does.
func TestPublishUnderTheProducerRole(t *testing.T) {
	c := startCluster(t)
	e1 := c.startEdge(t, "e1", 0) // makes PUSH_DLQ
	grace := dial(t, e1, "grace")
	c.interest(t, 1, "push.grace.high")
	ops := c.connect(t, "operator", 2)
	store := openDLQ(t, ops)
	rc := c.connect(t, "producer", 1)
	p, err := producer.New(rc.Conn, producer.Options{Name: "fast", StatusWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, session := range []string{"grace", "frank"} {
		if err := p.Publish(session, push.High, []byte("to "+session)); err != nil {
			t.Fatal(err)
		}
	}
	if f := recv(t, grace); string(f.Payload) != "to grace" {
		t.Fatalf("grace got %q", f.Payload)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("Stop with an hour's status window: %v (the marks did not come back)", err)
	}
	for len(rc.errs) > 0 {
		if err := <-rc.errs; errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("the producer role was refused: %v", err)
		}
	}
	if st := p.Stats(); st.Offline != 1 {
		t.Errorf("stats %+v; want the push to frank offline", st)
	}
	waitForLetters(t, store, "frank", 1)

	c.interest(t, 2, "push.all.high")
	bc := c.connect(t, "broadcast", 2)
	b, err := producer.New(bc.Conn, producer.Options{Name: "caster", StatusWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishGroup(push.AllGroup, push.High, []byte("to all")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, grace); string(f.Payload) != "to all" {
		t.Fatalf("grace got %q", f.Payload)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Errorf("broadcaster's Stop with an hour's status window: %v (the marks did not come back)", err)
	}
	for len(bc.errs) > 0 {
		if err := <-bc.errs; errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("the broadcast role was refused: %v", err)
		}
	}
}
