package bus

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/protocol"
)

// FuzzIntake: whatever reply subject and Push-Reply a push arrives with,
// the node answers only on a subject outside the fabric's own (no push,
// group push, control, dead letter, request, event or JetStream subject:
// protocol.Answerable), takes Push-Reply only from a hand-over (a reply
// under the edges' inbox), and leaves neither Push-Reply nor Push-Session
// in the push's headers.
func FuzzIntake(f *testing.F) {
	inbox := protocol.EdgeInboxPrefix("push")
	for _, c := range [][3]string{{"inbox.1", "victim", "mallory"}, {inbox + "n.7", "inbox.1", ""}, {inbox + "n.7", "push.all.high", ""},
		{"push.all.high", "", ""}, {"$JS.API.STREAM.PURGE.PUSH_DLQ", "", ""}, {inbox + "n.7", "dlq.push.offline.s.high", ""},
		{"evt.push.s.connected", "", "s"}, {inbox, "", ""}, {"_INBOX.x", "req.push.m", ""}} {
		f.Add(c[0], c[1], c[2])
	}
	d := &Dispatcher{prefix: "push", edgeInbox: inbox, replies: protocol.NewReplyRule("push"), log: zap.NewNop()}
	f.Fuzz(func(t *testing.T, reply, pushReply, session string) {
		h := nats.Header{protocol.HeaderID: {"id"}}
		for k, v := range map[string]string{protocol.HeaderReply: pushReply, protocol.HeaderSession: session} {
			if v != "" {
				h.Set(k, v)
			}
		}
		m := &nats.Msg{Subject: "push.s.high", Reply: reply, Header: h}
		if m.Reply != "" && !d.replies.Answerable(m.Reply) { // dispatch's first step
			d.unanswerable(m)
		}
		handing := d.intake(m)
		switch {
		case handing != "" && (handing != reply || !strings.HasPrefix(reply, inbox)):
			t.Fatalf("reply %q taken as a hand-over from %q", reply, handing)
		case handing == "" && m.Reply != "" && m.Reply != reply:
			t.Fatalf("Push-Reply %q honoured on a push with reply %q", pushReply, reply)
		case m.Reply != "" && (fabricSubject(m.Reply) || !protocol.Answerable("push", m.Reply)):
			t.Fatalf("the node would answer on %q", m.Reply)
		case len(m.Header) != 1:
			t.Fatalf("headers %v; want only Push-Id", m.Header)
		}
	})
}

// fabricSubject reports whether s is a subject of the fabric under prefix
// push that its parsers read, or a JetStream or system one.
func fabricSubject(s string) bool {
	_, _, push := protocol.ParseSubject("push", s)
	_, _, group := protocol.ParseGroupSubject("push", s)
	_, _, event := protocol.ParseEventSubject("push", s)
	reason, _, _ := protocol.ParseDeadLetterSubject(s)
	return push || group || event || reason != "" && strings.HasPrefix(s, protocol.DeadLetterPrefix("push")+".") ||
		strings.HasPrefix(s, "req.push.") || strings.HasPrefix(s, "$")
}
