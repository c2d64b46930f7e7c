package tests

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// park publishes n pushes for an offline session with the producer client,
// ids prefix0…; they become offline dead letters.
func park(t *testing.T, p *producer.Producer, session, prefix string, n int) {
	t.Helper()
	for i := range n {
		prio := push.High
		if i%2 == 1 {
			prio = push.Low
		}
		ack, err := p.Push(timeout(t), session, prio, []byte(fmt.Sprint(i)), producer.WithID(fmt.Sprintf("%s%d", prefix, i)))
		if err != nil || ack.Reason != "offline" {
			t.Fatalf("park %d: %+v %v", i, ack, err)
		}
	}
}

func openStore(t *testing.T, s *server.Server) *dlq.Store {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	st, err := dlq.Open(timeout(t), js, "push")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Dead letters of an offline session are replayed once it is back and
// arrive in order; while it is still offline they stay; an interrupted
// replay resumes without losing any.
func TestReplayRoundTrip(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")
	store := openStore(t, s)
	park(t, p, "away", "r", 6)
	waitFor(t, "6 dead letters", func() bool { l, _ := store.List(timeout(t), dlq.Filter{Session: "away"}); return len(l) == 6 })

	// Still offline: nothing moves.
	r, err := store.Replay(timeout(t), nc, dlq.Filter{Session: "away"}, dlq.ReplayOptions{})
	if err != nil || r.Offline != 6 || r.Replayed != 0 {
		t.Fatalf("replay while offline: %+v %v; want 6 offline", r, err)
	}
	if l, _ := store.List(timeout(t), dlq.Filter{Session: "away"}); len(l) != 6 {
		t.Fatalf("%d dead letters after a replay to an offline session; want 6", len(l))
	}

	// Back: a replay interrupted after two, then resumed.
	c := dial(t, n.tcp(), "away", client.Options{})
	ctx, cancel := context.WithCancel(timeout(t))
	r, err = store.Replay(ctx, nc, dlq.Filter{Session: "away"}, dlq.ReplayOptions{Progress: func(r dlq.ReplayResult) {
		if r.Replayed == 2 {
			cancel()
		}
	}})
	if err == nil || r.Replayed != 2 {
		t.Fatalf("interrupted replay: %+v %v; want 2 replayed and the interruption", r, err)
	}
	r, err = store.Replay(timeout(t), nc, dlq.Filter{Session: "away"}, dlq.ReplayOptions{Rate: 100})
	if err != nil || r.Replayed != 4 || r.Failed != 0 {
		t.Fatalf("resumed replay: %+v %v; want the other 4", r, err)
	}
	for i := range 6 {
		f := recv(t, c)
		if f.ID != fmt.Sprintf("r%d", i) || string(f.Payload) != fmt.Sprint(i) {
			t.Fatalf("replayed push %d arrived as %s %q; want r%d in order", i, f.ID, f.Payload, i)
		}
	}
	if l, _ := store.List(timeout(t), dlq.Filter{}); len(l) != 0 {
		t.Fatalf("%d dead letters left after the replay", len(l))
	}
}

// With --redeliver-offline a session's parked pushes arrive when it
// connects, before anything published after it connected, and leave the
// stream once written.
func TestRedeliverOfflineOnConnect(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.RedeliverOffline = true
	n := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")
	store := openStore(t, s)
	park(t, p, "returning", "parked", 4) // high, low, high, low
	waitFor(t, "4 dead letters", func() bool { l, _ := store.List(timeout(t), dlq.Filter{}); return len(l) == 4 })

	c := dial(t, n.ws(), "returning", client.Options{})
	// A new low push: it goes after the parked ones (a new high one would
	// overtake parked lows, as priority always does).
	if ack, err := p.Push(timeout(t), "returning", push.Low, []byte("new"), producer.WithID("new")); err != nil || ack.Status != "enqueued" {
		t.Fatalf("new push: %+v %v", ack, err)
	}
	var got []string
	for range 5 {
		got = append(got, recv(t, c).ID)
	}
	// The parked pushes first, oldest first within each priority (a parked
	// high queued before an older low is written may go first); the new
	// push after all of them.
	pos := map[string]int{}
	for i, id := range got {
		pos[id] = i
	}
	if len(pos) != 5 || pos["new"] != 4 || pos["parked0"] > pos["parked2"] || pos["parked1"] > pos["parked3"] {
		t.Fatalf("order %v; want parked0 before parked2, parked1 before parked3, and new last", got)
	}
	waitFor(t, "parked dead letters deleted", func() bool { l, _ := store.List(timeout(t), dlq.Filter{}); return len(l) == 0 })
}
