package bus

import (
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/protocol"
)

// A hand-over carries what the taking node acts on, and Push-Reply only
// when the producer still waits; the push itself is not changed.
func TestHandoverMsg(t *testing.T) {
	m := &nats.Msg{Subject: "push.s.low", Reply: "producer", Data: []byte("p"), Header: nats.Header{
		protocol.HeaderID: {"id1"}, protocol.HeaderAck: {"written"}, protocol.HeaderSession: {"mallory"},
		protocol.HeaderReply: {"victim"}, "Nats-Expected-Stream": {"x"}, "Nats-Msg-Id": {"y"},
	}}
	out := handoverMsg(m, "producer")
	want := nats.Header{protocol.HeaderID: {"id1"}, protocol.HeaderAck: {"written"}, protocol.HeaderReply: {"producer"}}
	if len(out.Header) != len(want) || out.Subject != m.Subject || string(out.Data) != "p" || out.Reply != "" {
		t.Fatalf("hand-over %+v; want subject %s, headers %v", out, m.Subject, want)
	}
	for k, v := range want {
		if out.Header.Get(k) != v[0] {
			t.Errorf("%s = %q; want %q", k, out.Header.Get(k), v[0])
		}
	}
	if out := handoverMsg(m, ""); out.Header.Get(protocol.HeaderReply) != "" {
		t.Errorf("nothing owed, yet Push-Reply %q", out.Header.Get(protocol.HeaderReply))
	}
	if len(m.Header) != 6 || m.Header.Get(protocol.HeaderReply) != "victim" {
		t.Errorf("the push's own headers changed: %v", m.Header)
	}
}

// On intake, Push-Reply counts only on a hand-over (reply subject under
// the edges' inbox); Push-Reply and Push-Session never stay in the headers.
func TestIntake(t *testing.T) {
	d := &Dispatcher{prefix: "push", edgeInbox: protocol.EdgeInboxPrefix("push"), replies: protocol.NewReplyRule("push"), log: zap.NewNop()}
	handing := protocol.EdgeInboxPrefix("push") + "node.7"
	for _, c := range []struct {
		name              string
		reply, pushReply  string
		wantHanding, want string
	}{
		{"producer push", "inbox.1", "victim", "", "inbox.1"},
		{"producer push without reply", "", "victim", "", ""},
		{"hand-over owing an ack", handing, "inbox.1", handing, "inbox.1"},
		{"hand-over owing nothing", handing, "", handing, ""},
		{"other edge prefix", protocol.EdgeInboxPrefix("other") + "n.1", "victim", "", protocol.EdgeInboxPrefix("other") + "n.1"},
	} {
		h := nats.Header{protocol.HeaderID: {"id"}, protocol.HeaderSession: {"mallory"}}
		if c.pushReply != "" {
			h.Set(protocol.HeaderReply, c.pushReply)
		}
		m := &nats.Msg{Subject: "push.s.high", Reply: c.reply, Header: h}
		if got := d.intake(m); got != c.wantHanding || m.Reply != c.want {
			t.Errorf("%s: handing %q, reply %q; want %q, %q", c.name, got, m.Reply, c.wantHanding, c.want)
		}
		if len(m.Header) != 1 {
			t.Errorf("%s: headers %v; want only Push-Id", c.name, m.Header)
		}
	}
	d.intake(&nats.Msg{Subject: "push.s.high"}) // no headers at all
}
