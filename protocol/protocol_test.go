package protocol

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestParseSubject(t *testing.T) {
	for subject, want := range map[string]string{
		"push.alice.high":  "alice/high",
		"push.a-b_c.ctl":   "a-b_c/ctl",
		"push.alice":       "",
		"push..high":       "",
		"push.alice.":      "",
		"push.alice.x.y":   "",
		"other.alice.high": "",
	} {
		s, tok, ok := ParseSubject("push", subject)
		got := ""
		if ok {
			got = s + "/" + tok
		}
		if got != want {
			t.Errorf("ParseSubject(%q) = %q; want %q", subject, got, want)
		}
	}
}

func TestAckRoundTrip(t *testing.T) {
	a := Ack{Status: StatusDead, Reason: "queue_full", Node: "n1", ID: `id "with" quotes`}
	got, err := ParseAck(a.Msg("reply"))
	if err != nil || got != a {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, a)
	}
	if _, err := ParseAck(&nats.Msg{Data: []byte(`{"status":"maybe"}`)}); err == nil {
		t.Fatal("accepted an unknown status")
	}
}

// FuzzParseSubject: any subject either splits into a session and a single
// token that rebuild it, or is refused.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"push.alice.high", "push..", "push.a.b.c", "", "push"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		session, token, ok := ParseSubject("push", subject)
		if !ok {
			return
		}
		if strings.Contains(token, ".") || session == "" || token == "" {
			t.Fatalf("split %q into %q and %q", subject, session, token)
		}
		if PushSubject("push", session, token) != subject {
			t.Fatalf("%q does not rebuild from %q, %q", subject, session, token)
		}
	})
}

func TestIsNATSHeader(t *testing.T) {
	for key, want := range map[string]bool{
		"Nats-Msg-Id": true, "nats-ttl": true, "NATS-Expected-Stream": true, "Nats-": true,
		"Nats": false, "Push-Orig-Nats-TTL": false, "Push-Id": false, "": false,
	} {
		if got := IsNATSHeader(key); got != want {
			t.Errorf("IsNATSHeader(%q) = %v; want %v", key, got, want)
		}
	}
}

func TestAnswerable(t *testing.T) {
	for reply, want := range map[string]bool{
		"_INBOX.abc.1": true, "_INBOX_producer.x": true, "_PUSH_EDGE.push.n.1": true, "pushy.inbox": true,
		"": false, "push.all.high": false, "push.x.ctl": false, "push.group.g.low": false,
		"dlq.push.offline.x.high": false, "req.push.echo": false, "evt.push.x.connected": false,
		"_PUSH_REQ.push.n.1": false, "$JS.API.CONSUMER.DELETE.PUSH_DLQ.c": false, "$SYS.REQ.SERVER.PING": false,
	} {
		if got := Answerable("push", reply); got != want {
			t.Errorf("Answerable(push, %q) = %v; want %v", reply, got, want)
		}
	}
}
