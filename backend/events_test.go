package backend_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// SessionEvents hands fn the events of the prefix it was given, with the
// session and kind of their subject; what is not an event goes to
// OnError; members of a queue group subscribe alike.
func TestSessionEvents(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	events, errs := make(chan backend.Event, 8), make(chan string, 8)
	o := backend.EventOptions{Prefix: "pf", Queue: "q", OnError: func(m *nats.Msg, _ error) { errs <- m.Subject }}
	for range 2 { // two members of one queue group
		sub, err := backend.SessionEvents(nc, func(e backend.Event) { events <- e }, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	publish := func(subject, body string) {
		if err := nc.Publish(subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	publish("evt.push.alice.connected", `{}`) // another prefix: not heard
	publish("evt.pf.alice.kicked", `{}`)
	publish("evt.pf.alice.connected", `{not json`)
	publish("evt.pf.alice.disconnected", `{"node":"edge1","reason":"revoked"}`)
	bad := map[string]bool{<-errs: true, <-errs: true} // each member in its own order
	if !bad["evt.pf.alice.kicked"] || !bad["evt.pf.alice.connected"] {
		t.Fatalf("OnError heard of %v; want the kicked and the garbled connected", bad)
	}
	select {
	case e := <-events:
		if e.Session != "alice" || e.Event != "disconnected" || e.Node != "edge1" || e.Reason != "revoked" {
			t.Fatalf("event %+v; want alice disconnected from edge1, revoked", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	if _, err := backend.SessionEvents(nil, func(backend.Event) {}, backend.EventOptions{}); err == nil {
		t.Fatal("no connection accepted")
	}
	if _, err := backend.SessionEvents(nc, func(backend.Event) {}, backend.EventOptions{Prefix: "a.b"}); err == nil {
		t.Fatal("prefix a.b accepted")
	}
}
