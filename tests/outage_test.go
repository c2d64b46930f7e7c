package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// outage is an edge node with an online client, on a server that can be
// stopped and started again on the same port and storage.
type outage struct {
	t    *testing.T
	opts *server.Options
	s    *server.Server
	n    *edgeNode
	c    *client.Conn
	nc   *nats.Conn
}

func newOutage(t *testing.T) *outage {
	o := &outage{t: t, opts: natstest.Options(t, "n1")}
	o.opts.Port = natstest.FreePort(t)
	o.s = natstest.StartWith(t, o.opts)
	o.n = startEdge(t, edgeConfig(t, o.s, "n1"))
	o.c = dial(t, o.n.tcp(), "online", client.Options{})
	o.nc = natstest.Connect(t, o.s, nats.MaxReconnects(-1))
	return o
}

// publish sends count pushes for the online session with the last subject
// token given (high, or something invalid).
func (o *outage) publish(prefix string, count int, token string) {
	o.t.Helper()
	for i := range count {
		m := pushMsg("online", "high", fmt.Sprintf("%s%d", prefix, i), "")
		m.Subject = "push.online." + token
		if err := o.nc.PublishMsg(m); err != nil {
			o.t.Fatal(err)
		}
	}
	if err := o.nc.Flush(); err != nil {
		o.t.Fatal(err)
	}
}

func (o *outage) expectDelivered(prefix string, count int) {
	o.t.Helper()
	for i := range count {
		if f := recv(o.t, o.c); f.ID != fmt.Sprintf("%s%d", prefix, i) {
			o.t.Fatalf("got %s; want %s%d", f.ID, prefix, i)
		}
	}
}

// settle waits until every dead letter is written or counted lost, and
// checks they are all in the stream.
func (o *outage) settle(total uint64) {
	o.t.Helper()
	waitFor(o.t, "every dead letter written", func() bool { st := o.n.Writer.Stats(); return st.Written+st.Lost == total })
	st := o.n.Writer.Stats()
	if stored := uint64(len(deadLetters(o.t, o.s))); stored+st.Lost != total {
		o.t.Fatalf("%d dead letters stored and %d counted lost; want %d in all", stored, st.Lost, total)
	}
	o.t.Logf("dead letters: %d written, %d counted lost; %d writes retried", st.Written, st.Lost, st.Retried)
}

// The dead-letter stream is deleted mid-run (by an operator, say): pushes to
// online sessions keep flowing, and the writer creates the stream again so
// the dead letters made since land.
func TestDeadLetterStreamDeleted(t *testing.T) {
	o := newOutage(t)
	js := natstest.JetStream(t, o.s)
	if err := js.DeleteStream(timeout(t), protocol.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	o.publish("during-", 50, "high")
	o.publish("bad-", 20, "bogus") // invalid: 20 dead letters
	o.expectDelivered("during-", 50)
	o.settle(20)
}

// The whole NATS server goes and comes back: the node keeps writing to its
// clients meanwhile, holds the dead letters it makes, and writes them once
// it has reconnected.
func TestNATSServerRestart(t *testing.T) {
	o := newOutage(t)
	o.s.Shutdown()
	o.s.WaitForShutdown()
	h := o.n.Server.Registry().Get("online")
	for i := range 10 {
		if err := h.TryPush(push.High, edge.Envelope{Frame: edge.Frame{ID: fmt.Sprintf("local-%d", i)}}); err != nil {
			t.Fatal(err)
		}
		// already expired: a dead letter made while NATS is down
		_ = h.TryPush(push.Low, edge.Envelope{Frame: edge.Frame{ID: fmt.Sprintf("stale-%d", i)}, Expires: time.Now().Add(-time.Second)})
	}
	o.expectDelivered("local-", 10)
	o.s = natstest.StartWith(t, o.opts)
	o.settle(10)
	waitFor(t, "the edge reconnected", func() bool { return o.n.Bus.Stats().Reconnects > 0 })
	o.publish("after-", 5, "high")
	o.expectDelivered("after-", 5)
}
