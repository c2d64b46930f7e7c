package cluster

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
)

// An edge node answers on the reply subject the asker chose, with the
// edge's own rights: a requester must not borrow them. A producer (denied
// push.all.>) that gives a push the reply subject push.all.high, or forges
// a hand-over (a reply subject under the edges' inbox, which NATS lets any
// publisher name) with Push-Reply: push.all.high, and a presence asker that
// names evt.push.victim.connected, get nothing published there: no
// broadcast reaches a bystander, no session event is forged. The pushes
// are still delivered.
func TestRepliesCannotBorrowTheEdgesRights(t *testing.T) {
	c := startCluster(t)
	e1 := c.startEdge(t, "e1", 0)
	victim := dial(t, e1, "victim")
	bystander := dial(t, e1, "bystander")
	spy := c.connect(t, "edge", 0)
	broadcasts, err := spy.SubscribeSync("push.all.>")
	if err != nil {
		t.Fatal(err)
	}
	events := c.connect(t, "events", 0)
	forgedEvents, err := events.SubscribeSync("evt.push.victim.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Flush(); err != nil {
		t.Fatal(err)
	}
	c.interest(t, 0, "push.victim.high")
	c.interest(t, 0, "push.bystander.high")
	prod := c.connect(t, "producer", 0)
	for id, m := range map[string]*nats.Msg{
		"direct": {Reply: "push.all.high"},
		"forged": {Reply: protocol.EdgeInboxPrefix("push") + "forged.1", Header: nats.Header{protocol.HeaderReply: []string{"push.all.high"}}},
	} {
		m.Subject, m.Data = "push.victim.high", []byte(id)
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(protocol.HeaderID, id)
		if err := prod.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if f := recv(t, victim); f.ID != "direct" && f.ID != "forged" {
			t.Fatalf("victim got %s; want the two pushes", f.ID)
		}
	}
	ask := c.connect(t, "presence", 0)
	if err := ask.PublishRequest("push.victim.presence", "evt.push.victim.connected", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ask.Request("push.victim.presence", nil, waitLimit); err != nil { // answered after the first
		t.Fatal(err)
	}
	// The marker's ack comes after the others' answers on the edge's
	// connection; the spies, on the edge's server, have had anything the
	// edge published before it once their flushes return.
	ack, err := prod.Request("push.bystander.high", []byte("marker"), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := protocol.ParseAck(ack); err != nil || a.Status != protocol.StatusEnqueued {
		t.Fatalf("marker ack %s, %v; want enqueued", ack.Data, err)
	}
	for _, nc := range []*roleConn{spy, events} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := broadcasts.NextMsg(0); err == nil {
		t.Fatalf("the edge published %s on %s for a producer not allowed to broadcast", m.Data, m.Subject)
	}
	for m, err := forgedEvents.NextMsg(0); err == nil; m, err = forgedEvents.NextMsg(0) {
		var e map[string]any
		if err := json.Unmarshal(m.Data, &e); err != nil || e["event"] != protocol.EventConnected { // not victim's own connected event
			t.Fatalf("the edge published %s on %s for a presence asker", m.Data, m.Subject)
		}
	}
	if f := recv(t, bystander); string(f.Payload) != "marker" {
		t.Fatalf("bystander got %q (%s); want only the marker", f.Payload, f.ID)
	}
}
