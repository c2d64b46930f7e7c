package dlq_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// An entry's reason, session and priority are its stream subject's tokens,
// which replay trusts, not the Push-Reason, Push-Session and Push-Priority
// headers whoever stored it may have forged; a filter selects by the same
// tokens.
func TestEntryNamesItsSubjectsTokens(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	natstest.StoreForged(ctx(t), t, js, natstest.ForgedLetter{Subject: "dlq.push.offline.carol.high", ID: "f1", PushSubject: "push.dave.low",
		Header: nats.Header{protocol.HeaderReason: {"closed"}, protocol.HeaderSession: {"dave"}, protocol.HeaderPriority: {"low"}}})
	store, err := dlq.Open(ctx(t), js, "push")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []dlq.Filter{{}, {Session: "carol", Reason: "offline", Priority: "high"}} {
		l, err := store.List(ctx(t), f)
		if err != nil || len(l) != 1 {
			t.Fatalf("list %+v: %d letters, %v; want the forged one", f, len(l), err)
		}
		if got := string(l[0].Reason()) + " " + l[0].Session() + " " + l[0].Priority(); got != "offline carol high" {
			t.Errorf("list %+v: reason, session, priority %q; want offline carol high (its subject's)", f, got)
		}
	}
	if l, err := store.List(ctx(t), dlq.Filter{Session: "dave"}); err != nil || len(l) != 0 {
		t.Errorf("list --session dave: %d letters, %v; want none", len(l), err)
	}
	for subject, want := range map[string]string{
		"dlq.push.offline.group.g1.low": "offline group.g1 low",
		"dlq.push.bad":                  "  ",
		"other.push.offline.s1.high":    "  ",
	} {
		e := dlq.Entry{Subject: subject, Header: nats.Header{protocol.HeaderSession: {"dave"}}}
		if got := string(e.Reason()) + " " + e.Session() + " " + e.Priority(); got != want {
			t.Errorf("%s: %q; want %q", subject, got, want)
		}
	}
}
