package tests

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A push with 20,000 small headers (about 220 KB, under the max payload)
// that expires in the queue ends as a stored dead letter, trimmed to fit,
// not lost; and another session on the node gets its pushes meanwhile.
func TestManyHeaderPushDiesTrimmedWithoutHoldingUpOthers(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dial(t, n.tcp(), "crowded", client.Options{})
	other := dial(t, n.tcp(), "other", client.Options{})
	nc := natstest.Connect(t, s)

	m := pushMsg("crowded", "high", "many", "stale")
	m.Header.Set(protocol.HeaderExpires, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano))
	for i := range 20_000 {
		m.Header["X-H"+strconv.Itoa(i)] = []string{"v"}
	}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		id := fmt.Sprintf("o%d", i)
		if err := nc.PublishMsg(pushMsg("other", "high", id, "hi")); err != nil {
			t.Fatal(err)
		}
		if f := recv(t, other); f.ID != id {
			t.Fatalf("session other got %s; want %s", f.ID, id)
		}
	}
	st, ctx := dlqStream(t, s), timeout(t)
	var dl *jetstream.RawStreamMsg
	waitFor(t, "the dead letter of push many", func() bool {
		var err error
		dl, err = st.GetLastMsgForSubject(ctx, "dlq.push.expired.crowded.high")
		return err == nil
	})
	var lines, bytes int
	if _, err := fmt.Sscanf(dl.Header.Get(protocol.HeaderTrimmed), "headers %d %d", &lines, &bytes); err != nil || lines < 10_000 ||
		dl.Header.Get(protocol.HeaderReason) != "expired" || dl.Header.Get(protocol.HeaderID) != "many" {
		t.Fatalf("dead letter on %s, reason %q, Push-Trimmed %q; want expired, trimmed of over ten thousand headers",
			dl.Subject, dl.Header.Get(protocol.HeaderReason), dl.Header[protocol.HeaderTrimmed])
	}
}
