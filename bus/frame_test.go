package bus

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
)

func TestFrameOf(t *testing.T) {
	ids := newIDSource()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	m := &nats.Msg{Subject: "push.s.high", Reply: "r", Data: []byte("p"), Header: nats.Header{
		protocol.HeaderID: {"id1"}, protocol.HeaderContentType: {"text/plain"},
		protocol.HeaderExpires: {exp.Format(time.RFC3339Nano)}, protocol.HeaderAck: {"written"},
	}}
	e, mode, err := envelopeOf(m, &ids)
	if f := e.Frame; err != nil || f.ID != "id1" || f.ContentType != "text/plain" || !e.Expires.Equal(exp) || mode != "written" {
		t.Fatalf("envelopeOf: %+v %q %v", e, mode, err)
	}
	// No id: one is made; the message gets it when it travels on.
	m = &nats.Msg{Subject: "push.s.low", Data: []byte("p")}
	e, mode, err = envelopeOf(m, &ids)
	if err != nil || e.Frame.ID == "" || m.Header != nil || mode != protocol.AckNone {
		t.Fatalf("envelopeOf without id or reply: %+v %q %v", e, mode, err)
	}
	stampID(m, e.Frame.ID)
	if m.Header.Get(protocol.HeaderID) != e.Frame.ID {
		t.Fatalf("stampID: headers %v, want id %s", m.Header, e.Frame.ID)
	}
	stampID(m, "other")
	if m.Header.Get(protocol.HeaderID) != e.Frame.ID {
		t.Fatalf("stampID replaced an id: %v", m.Header)
	}
	for _, h := range []nats.Header{{protocol.HeaderExpires: {"soon"}}, {protocol.HeaderAck: {"later"}}} {
		if _, _, err := envelopeOf(&nats.Msg{Subject: "push.s.low", Header: h}, &ids); err == nil {
			t.Errorf("envelopeOf accepted %v", h)
		}
	}
}

// A push that expires at the zero time, year 1, has expired: it is not
// read as one that never does (FuzzFrameOf found it).
func TestExpiresAtTheZeroTime(t *testing.T) {
	ids := newIDSource()
	h := nats.Header{protocol.HeaderExpires: {"0001-01-01T00:00:00Z"}}
	e, _, err := envelopeOf(&nats.Msg{Subject: "push.s.high", Header: h}, &ids)
	if err != nil || e.Expires.IsZero() || e.Expires.After(time.Now()) {
		t.Fatalf("Push-Expires %s read as expiry %v (zero: none), %v", h.Get(protocol.HeaderExpires), e.Expires, err)
	}
}

// FuzzFrameOf: whatever headers a producer sends, reading the push either
// fails or gives a push with a UTF-8 id, its content type, expiry and
// payload as sent, and a known ack mode (none without a reply subject);
// the client is asked for a receipt exactly when the push wants received.
// It never panics.
func FuzzFrameOf(f *testing.F) {
	ids := newIDSource()
	f.Add("id", "2030-01-02T03:04:05Z", "written", "text/plain", "reply")
	f.Add("", "", "", "", "")
	f.Add("x", "not a time", "none", "", "r")
	f.Fuzz(func(t *testing.T, id, expires, ack, ct, reply string) {
		h := nats.Header{}
		for k, v := range map[string]string{protocol.HeaderID: id, protocol.HeaderExpires: expires, protocol.HeaderAck: ack, protocol.HeaderContentType: ct} {
			if v != "" {
				h.Set(k, v)
			}
		}
		e, mode, err := envelopeOf(&nats.Msg{Subject: "push.s.high", Reply: reply, Header: h}, &ids)
		if err != nil {
			return
		}
		if e.Frame.ID == "" || !utf8.ValidString(e.Frame.ID) || id != "" && e.Frame.ID != id || e.Frame.ContentType != ct {
			t.Fatalf("push id %q, content type %q from %q, %q", e.Frame.ID, e.Frame.ContentType, id, ct)
		}
		switch {
		case mode != protocol.AckEnqueued && mode != protocol.AckWritten && mode != protocol.AckReceived && mode != protocol.AckNone,
			reply == "" && mode != protocol.AckNone:
			t.Fatalf("ack mode %q (Push-Ack %q, reply %q)", mode, ack, reply)
		case e.Frame.WantsReceipt != (ack == protocol.AckReceived):
			t.Fatalf("receipt wanted %v for Push-Ack %q", e.Frame.WantsReceipt, ack)
		case expires != "" && e.Expires.IsZero():
			t.Fatalf("Push-Expires %q read as no expiry", expires)
		}
	})
}

// The dispatch lane's per-push work before the queue: subject, frame, id.
func BenchmarkDispatchParse(b *testing.B) {
	ids := newIDSource()
	payload := make([]byte, 128)
	for _, tc := range []struct {
		name string
		h    nats.Header
	}{
		{"plain", nil}, // a bare publish: the id is made here
		{"producer", nats.Header{protocol.HeaderID: {"7JrKy7XzBuzdRkfXsEFvFf"}, protocol.HeaderAck: {protocol.AckNone},
			protocol.HeaderSentAt: {"2026-11-28T03:04:05.123456789Z"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := &nats.Msg{Subject: "push.session-42.high", Header: tc.h, Data: payload}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := protocol.ParseSubject("push", m.Subject); !ok {
					b.Fatal("subject")
				}
				if _, _, err := envelopeOf(m, &ids); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
