package dlq_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// FuzzReplayMsg: a dead letter as the store reads it back — any stream
// subject, any headers, as whoever stored it may have forged them — is
// refused (a *dlq.RefusedError, nothing to publish), or replays as a push
// to push.<session>.high|low for the valid, unreserved session its own
// subject names, never elsewhere, with none of the headers only the edge
// or the stream may set, its replay counted once more and an
// acknowledgement asked for. Each header is the fuzzer's key: value pair
// on a line of its own.
func FuzzReplayMsg(f *testing.F) {
	for _, l := range forged {
		f.Add(l.subject, protocol.HeaderSubject+": "+l.pushSubject+"\n"+protocol.HeaderControl+": takeover", []byte("p"))
	}
	f.Add("dlq.push.offline.s1.high", protocol.HeaderTrimmed+": payload 1048000", []byte(nil))
	f.Add("dlq.push.offline.s1.high", protocol.HeaderReplayCount+": 9223372036854775806", []byte("p"))
	f.Add("dlq.push.offline.s1.high", protocol.HeaderReplayCount+": 1\n"+protocol.HeaderReplayCount+": 2", []byte("p"))
	f.Add("dlq.push.expired.s1.low", "Nats-Msg-Id: x\nPush-Orig-Nats-Msg-Id: y\n"+protocol.HeaderReply+": victim\n"+protocol.HeaderAck+": written", []byte("p"))
	f.Add("dlq.push.offline.group.g1.high", protocol.HeaderGroup+": g1", []byte("p"))
	f.Add("dlq.other.offline.s1.high", "", []byte("p"))
	f.Add("dlq.push.offline.s1.s2.high", "", []byte("p"))
	f.Add("dlq.push.offline.s1.high.", "", []byte("p"))
	f.Fuzz(func(t *testing.T, subject, headers string, data []byte) {
		e := dlq.Entry{Seq: 7, Subject: subject, Header: headersOf(headers), Data: data}
		m, err := dlq.ReplayMsg(protocol.DefaultPrefix, e)
		if err != nil {
			var refused *dlq.RefusedError
			if !errors.As(err, &refused) || !errors.Is(err, dlq.ErrRefused) || m != nil {
				t.Fatalf("refusal %v (%T) with message %v", err, err, m)
			}
			return
		}
		checkReplay(t, e, m)
	})
}

// checkReplay fails unless m is a push the replay of e may publish.
func checkReplay(t *testing.T, e dlq.Entry, m *nats.Msg) {
	t.Helper()
	session, prio, ok := protocol.ParseSubject(protocol.DefaultPrefix, m.Subject)
	if !ok || push.CheckSession(session) != nil || prio != "high" && prio != "low" {
		t.Fatalf("letter %s replays to %s", e.Subject, m.Subject)
	}
	if session != e.Session() || prio != e.Priority() || !e.Reason().Known() {
		t.Fatalf("letter %s (reason %q, session %q, priority %q) replays to %s", e.Subject, e.Reason(), e.Session(), e.Priority(), m.Subject)
	}
	for k := range m.Header {
		if protocol.IsNATSHeader(k) || strings.HasPrefix(k, dlq.OrigPrefix) || edgeOnly[k] {
			t.Fatalf("replay of %s carries %s", e.Subject, k)
		}
	}
	was, _ := strconv.ParseUint(e.Header.Get(protocol.HeaderReplayCount), 10, 64)
	if got := m.Header.Values(protocol.HeaderReplayCount); len(got) != 1 || got[0] != strconv.FormatUint(was+1, 10) {
		t.Fatalf("replay count %q after %q", got, e.Header.Values(protocol.HeaderReplayCount))
	}
	if ack := m.Header.Get(protocol.HeaderAck); ack != protocol.AckEnqueued && ack != protocol.AckWritten {
		t.Fatalf("replay asks for ack %q", ack)
	}
	if string(m.Data) != string(e.Data) {
		t.Fatalf("replay payload %q; stored %q", m.Data, e.Data)
	}
}

// edgeOnly are the headers a replayed push never carries: those of the
// dead letter, and those only an edge node sets.
var edgeOnly = map[string]bool{
	protocol.HeaderReason: true, protocol.HeaderSubject: true, protocol.HeaderSession: true,
	protocol.HeaderPriority: true, protocol.HeaderNode: true, protocol.HeaderDeadAt: true,
	protocol.HeaderDeadID: true, protocol.HeaderTrimmed: true, protocol.HeaderReply: true,
	protocol.HeaderInvalid: true,
}

// headersOf reads "key: value" lines; a line without ": " is a key with
// an empty value.
func headersOf(s string) nats.Header {
	h := nats.Header{}
	for line := range strings.Lines(s) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		h[k] = append(h[k], v)
	}
	return h
}

// FuzzEntryTokens: the tokens a dead letter is filtered and replayed by
// come from its stream subject alone, the same from dlq.ParseSubject and
// the Entry, and build the subject back.
func FuzzEntryTokens(f *testing.F) {
	for _, l := range forged {
		f.Add(l.subject)
	}
	f.Add("dlq.push.offline.group.g1.low")
	f.Add("dlq")
	f.Add("dlq.push...")
	f.Fuzz(func(t *testing.T, subject string) {
		e := dlq.Entry{Subject: subject, Header: nats.Header{protocol.HeaderReason: {"offline"}, protocol.HeaderSession: {"victim"}}}
		reason, session, prio := e.Reason(), e.Session(), e.Priority()
		if r, s, p, ok := dlq.ParseSubject(protocol.DefaultPrefix, subject); ok && (r != string(reason) || s != session || p != prio) {
			t.Fatalf("%s: ParseSubject %q %q %q, Entry %q %q %q", subject, r, s, p, reason, session, prio)
		}
		if reason == "" {
			return
		}
		prefix := strings.Split(subject, ".")[1]
		if back := protocol.DeadLetterSubject(prefix, reason, session, prio); back != subject {
			t.Fatalf("%s: tokens %q %q %q build %s", subject, reason, session, prio, back)
		}
	})
}
