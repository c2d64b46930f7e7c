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
