package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// An edge dead-letters 30 pushes whose dead letters JetStream would refuse
// as they are (headers it acts on, a payload at the server's limit, over
// 64 KiB of headers) among 1,000 ordinary ones: every one is stored, none
// lost, and none stored with a Nats-* header JetStream would act on.
func TestEdgeDeadLettersPoisonPushes(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dial(t, n.tcp(), "s1", client.Options{})
	nc := natstest.Connect(t, s)
	poison := []func(*nats.Msg){
		func(m *nats.Msg) { m.Header.Set("Nats-Expected-Last-Sequence", "999") },
		func(m *nats.Msg) { m.Header.Set("Nats-Expected-Stream", "other") },
		func(m *nats.Msg) { m.Header.Set("Nats-TTL", "1s") },
		func(m *nats.Msg) { m.Data = make([]byte, nc.MaxPayload()-200) },
		func(m *nats.Msg) { m.Header.Set("X-Big", strings.Repeat("x", 70_000)) },
	}
	for i := range 1000 {
		// An unknown subject token: the edge dead-letters it, invalid.
		m := pushMsg("s1", "bogus", fmt.Sprint("ok", i), "x")
		if i%33 == 0 && i/33 < 30 {
			p := pushMsg("s1", "bogus", fmt.Sprint("poison", i/33), "x")
			poison[(i/33)%len(poison)](p)
			if err := nc.PublishMsg(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "1,030 dead letters", func() bool { return dlqMsgs(t, dlqStream(t, s)) == 1030 })
	for _, dl := range deadLetters(t, s) {
		for k := range dl.Header {
			if strings.HasPrefix(k, "Nats-") && k != nats.MsgIdHdr {
				t.Errorf("dead letter %s stored with %s", dl.Header.Get(protocol.HeaderID), k)
			}
		}
	}
	_, mfs := scrape(t, n)
	for _, m := range mfs["pushfabric_pushes_lost_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v != 0 {
			t.Errorf("%v pushes lost %v; want none", v, m.GetLabel())
		}
	}
}

// dlqMsgs is how many dead letters st holds.
func dlqMsgs(t *testing.T, st jetstream.Stream) uint64 {
	t.Helper()
	info, err := st.Info(timeout(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
