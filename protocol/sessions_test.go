package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestParseEventSubject(t *testing.T) {
	for subject, want := range map[string]string{
		"evt.push.alice.connected":    "alice/connected",
		"evt.push.alice.disconnected": "alice/disconnected",
		"evt.push.alice.kicked":       "",
		"evt.push.alice":              "",
		"evt.push.a.b.connected":      "",
		"push.alice.connected":        "",
		"evt.other.alice.connected":   "",
	} {
		s, e, ok := ParseEventSubject("push", subject)
		got := ""
		if ok {
			got = s + "/" + e
		}
		if got != want {
			t.Errorf("ParseEventSubject(%q) = %q; want %q", subject, got, want)
		}
	}
}

// An event's session and kind are its subject's, whatever its body says;
// a body that is not an event is an error.
func TestParseSessionEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	body, _ := json.Marshal(SessionEvent{Session: "mallory", Event: EventConnected, Node: "edge1", At: at, Reason: "revoked"})
	e, err := ParseSessionEvent("push", &nats.Msg{Subject: EventSubject("push", "alice", EventDisconnected), Data: body})
	if err != nil || e.Session != "alice" || e.Event != EventDisconnected || e.Node != "edge1" || !e.At.Equal(at) || e.Reason != "revoked" {
		t.Fatalf("ParseSessionEvent: %+v, %v", e, err)
	}
	if _, err := ParseSessionEvent("push", &nats.Msg{Subject: "evt.push.alice.connected", Data: []byte("{")}); err == nil {
		t.Fatal("a body that is not JSON parsed")
	}
}

// FuzzParseSessionEvent: anything published on an event subject is an
// event of that subject's session, or an error; never a panic.
func FuzzParseSessionEvent(f *testing.F) {
	f.Add("evt.push.alice.connected", []byte(`{"node":"edge1","since":"2026-12-01T18:00:00Z"}`))
	f.Add("evt.push.alice.disconnected", []byte(`{"reason":1}`))
	f.Add("evt.push..connected", []byte(`null`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		e, err := ParseSessionEvent("push", &nats.Msg{Subject: subject, Data: data})
		if err != nil {
			return
		}
		if EventSubject("push", e.Session, e.Event) != subject {
			t.Fatalf("%q parsed as session %q, event %q", subject, e.Session, e.Event)
		}
	})
}
