package tests

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// With --redeliver-offline, a parked push whose dead letter was trimmed to
// fit the stream (its payload gone) is not delivered as what is left of
// it: it stays in the stream for an operator, the node warns once with its
// push id — not again when the session connects again — and the parked
// pushes on either side of it are delivered, in order, before what was
// published after the session connected.
func TestRedeliverOfflineLeavesTrimmedLetters(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.RedeliverOffline = true
	n, logs := startEdgeObserved(t, cfg)
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")
	store := openStore(t, s)
	for _, d := range []struct {
		id      string
		payload []byte
	}{{"before", []byte("1")}, {"trimmed", make([]byte, nc.MaxPayload()-200)}, {"after", []byte("2")}} {
		if ack, err := p.Push(timeout(t), "back", push.High, d.payload, producer.WithID(d.id)); err != nil || ack.Reason != "offline" {
			t.Fatalf("park %s: %+v %v", d.id, ack, err)
		}
	}
	waitFor(t, "3 dead letters", func() bool { l, _ := store.List(timeout(t), dlq.Filter{}); return len(l) == 3 })
	if l, _ := store.List(timeout(t), dlq.Filter{}); l[1].ID() != "trimmed" || l[1].Header.Get(protocol.HeaderTrimmed) == "" {
		t.Fatalf("second dead letter %s, Push-Trimmed %q; want trimmed, trimmed", l[1].ID(), l[1].Header.Get(protocol.HeaderTrimmed))
	}

	for i, fresh := range []string{"new-1", "new-2"} {
		c := dial(t, n.ws(), "back", client.Options{})
		if ack, err := p.Push(timeout(t), "back", push.High, []byte("x"), producer.WithID(fresh)); err != nil || ack.Status != "enqueued" {
			t.Fatalf("push %s: %+v %v", fresh, ack, err)
		}
		want := []string{"before", "after", fresh}[min(i*2, 2):] // the parked ones only until written
		for _, id := range want {
			if f := recv(t, c); f.ID != id {
				t.Fatalf("connect %d: got %s %d bytes; want %s (parked pushes but the trimmed one, then %s)", i+1, f.ID, len(f.Payload), id, fresh)
			}
		}
		waitFor(t, "the written parked pushes out of the stream", func() bool {
			l, _ := store.List(timeout(t), dlq.Filter{})
			return len(l) == 1 && l[0].ID() == "trimmed"
		})
		_ = c.Close()
		waitFor(t, "the session gone from the node", func() bool { return n.Dispatcher.Stats().Sessions == 0 })
	}
	warned := logs.FilterField(zap.String("push_id", "trimmed")).FilterLevelExact(zapcore.WarnLevel).All()
	if len(warned) != 1 {
		t.Fatalf("%d warnings name push trimmed over two connects; want 1: %v", len(warned), warned)
	}
}

// startEdgeObserved is startEdge with the node's log lines at warn level
// and above kept for the test.
func startEdgeObserved(t testing.TB, cfg app.Config) (*edgeNode, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	node, stop, err := app.Run(timeout(t), cfg, zap.New(core))
	if err != nil {
		t.Fatalf("edge %s: %v", cfg.Identity.Node, err)
	}
	n := &edgeNode{Node: node, stop: stop}
	t.Cleanup(func() { n.shutdown(t) })
	return n, logs
}
