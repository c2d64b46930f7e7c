package protocol

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzParseAck: any reply a producer gets is an ack with one of the four
// statuses or an error, never a panic; an ack a node encodes decodes back
// the same.
func FuzzParseAck(f *testing.F) {
	for _, a := range []Ack{{Status: StatusEnqueued, Node: "n1", ID: "id1"}, {Status: StatusDead, Reason: "offline"},
		{Status: StatusEnqueued, Members: 3}, {Status: StatusReceived}} {
		f.Add(a.Msg("r").Data, a.Status)
	}
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{"status":"dead","members":-1}`), "written")
	f.Add([]byte(`{"status":"bogus"}`), "enqueued")
	f.Add([]byte(`[]`), "")
	f.Add([]byte(nil), "503") // a no-responders status
	f.Fuzz(func(t *testing.T, data []byte, status string) {
		m := &nats.Msg{Data: data, Header: nats.Header{}}
		if status != "" {
			m.Header.Set(HeaderStatus, status)
		}
		a, err := ParseAck(m)
		if err != nil {
			return
		}
		switch a.Status {
		case StatusEnqueued, StatusWritten, StatusReceived, StatusDead:
		default:
			t.Fatalf("ack %+v from %q accepted", a, data)
		}
		if back, err := ParseAck(a.Msg("r")); err != nil || back != a {
			t.Fatalf("ack %+v encodes and decodes as %+v, %v", a, back, err)
		}
	})
}

// FuzzParseMemberReply: any membership reply decodes to the node's
// answer or an error (a refusal carries the node's reply with its reason);
// an answer a node encodes decodes back the same.
func FuzzParseMemberReply(f *testing.F) {
	for _, r := range []MemberReply{{Session: "s1", Node: "n1", Groups: []string{"g1", "g2"}}, {Session: "s1", Groups: []string{}, Error: "too many groups"}} {
		f.Add(r.Msg("r").Data)
	}
	f.Add([]byte(`{"status":"enqueued"}`)) // a push's ack, from a node that predates membership
	f.Add([]byte(`{"groups":"g1"}`))
	f.Add([]byte(`{"error":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseMemberReply(&nats.Msg{Data: data})
		if r.Error != "" && err == nil {
			t.Fatalf("refusal %q from %q not an error", r.Error, data)
		}
		if err != nil {
			return
		}
		if back, err := ParseMemberReply(r.Msg("r")); err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("reply %+v encodes and decodes as %+v, %v", r, back, err)
		}
	})
}

// FuzzParseDeadLetterSubject: the tokens of any dead-letter subject build
// it back, or are all empty; no other shape is read as a letter.
func FuzzParseDeadLetterSubject(f *testing.F) {
	for _, s := range []string{"dlq.push.offline.s1.high", "dlq.push.offline.group.g1.low", "dlq.push.offline.s1", "dlq..a.b.c", "push.s1.high"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		reason, session, prio := ParseDeadLetterSubject(subject)
		if reason == "" && session == "" && prio == "" {
			return
		}
		prefix, _, _ := strings.Cut(subject[len("dlq."):], ".")
		if back := DeadLetterSubject(prefix, reason, session, prio); back != subject {
			t.Fatalf("%q parsed as %q %q %q, which build %q", subject, reason, session, prio, back)
		}
	})
}
