package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A push whose Push-Expires has passed when it reaches the node is
// answered dead, expired — the producer is not told it was queued — and
// dead-lettered expired; the client never sees it, and the next push
// still reaches it.
func TestPushExpiredOnArrivalIsAckedDead(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	c := dial(t, n.tcp(), "late", client.Options{})
	nc := natstest.Connect(t, s)

	m := pushMsg("late", "high", "stale", "old news")
	m.Header.Set(protocol.HeaderExpires, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano))
	reply, err := nc.RequestMsg(m, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	a, err := protocol.ParseAck(reply)
	if err != nil || a.Status != protocol.StatusDead || a.Reason != "expired" || a.ID != "stale" {
		t.Fatalf("ack %+v (%v); want dead, expired, for push stale", a, err)
	}
	lastLetter(t, s, "dlq.push.expired.late.high")
	if err := nc.PublishMsg(pushMsg("late", "high", "fresh", "news")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, c); f.ID != "fresh" {
		t.Fatalf("the client got %s; want fresh, and never stale", f.ID)
	}
}

// An invalid dead letter says which header or subject token was invalid,
// in its Push-Invalid header; one a producer set itself is not kept.
func TestInvalidDeadLetterSaysWhatWasInvalid(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dial(t, n.tcp(), "bad", client.Options{})
	nc := natstest.Connect(t, s)

	for _, c := range []struct {
		what, token, header, value, want string
	}{
		{"an unparsable expiry", "high", protocol.HeaderExpires, "tomorrow", "Push-Expires: "},
		{"an unknown ack mode", "low", protocol.HeaderAck, "sometimes", "Push-Ack "},
		{"an unknown priority", "urgent", protocol.HeaderInvalid, "forged", `subject token "urgent": `},
	} {
		m := pushMsg("bad", c.token, "p", "x")
		m.Header.Set(c.header, c.value)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		dl := lastLetter(t, s, protocol.DeadLetterSubject(protocol.DefaultPrefix, push.ReasonInvalid, "bad", c.token))
		if got := dl.Header.Get(protocol.HeaderInvalid); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: Push-Invalid %q; want it to begin %q", c.what, got, c.want)
		}
	}
}

// lastLetter waits for the newest dead letter on subject.
func lastLetter(t *testing.T, s *server.Server, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	st, ctx := dlqStream(t, s), timeout(t)
	var dl *jetstream.RawStreamMsg
	waitFor(t, "a dead letter on "+subject, func() bool {
		var err error
		dl, err = st.GetLastMsgForSubject(ctx, subject)
		return err == nil
	})
	return dl
}
