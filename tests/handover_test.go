package tests

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A flapping client (issue 11): its session has pushes queued on A; it
// connects to B and leaves again at once, and A learns of the takeover only
// after B has let the session go. A hands the queue over by request, hears
// that no one took it, and dead-letters it replaced: every push acked
// enqueued is delivered or dead-lettered, none vanishes.
func TestFlappingClientLosesNothing(t *testing.T) {
	s := natstest.Server(t)
	proxy := startProxy(t, s.Addr().String())
	cfgA := edgeConfig(t, s, "A")
	cfgA.Bus.URLs = []string{proxy.url()}
	cfgA.Edge.Rate, cfgA.Edge.Burst = 5, 1 // the pushes stay queued on A
	a := startEdge(t, cfgA)
	b := startEdge(t, edgeConfig(t, s, "B"))
	nc := natstest.Connect(t, s)

	got := &ledger{seen: map[string]int{}}
	onA := dial(t, a.tcp(), "flapper", client.Options{OnPush: got.onPush})
	ids := pushAcked(t, nc, "flapper", "low", 66, "A")

	// A stops hearing from NATS (its own publishes still go out) while the
	// client connects to B and leaves; B's takeover announcement waits for A.
	proxy.hold()
	onB := dial(t, b.ws(), "flapper", client.Options{OnPush: got.onPush})
	_ = onB.Close()
	waitFor(t, "B to let the session go", func() bool { return b.Dispatcher.Stats().Sessions == 0 })
	proxy.release()
	endedReplaced(t, onA)

	reasons := account(t, s, ids, got, a, b)
	for id, r := range reasons {
		if len(r) > 0 && r[0] != "replaced" && r[0] != "closed" {
			t.Errorf("push %s dead-lettered %v; want replaced (or closed by B)", id, r)
		}
	}
}

// A forged takeover (a plain publish on push.<s>.ctl naming a node that
// holds nothing, with a newer start time, as anyone may send on an open
// NATS): the queued pushes have nowhere to go, and are dead-lettered
// replaced rather than lost.
func TestForgedTakeoverDeadLettersTheQueue(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.Rate, cfg.Edge.Burst = 5, 1
	a := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	got := &ledger{seen: map[string]int{}}
	c := dial(t, a.tcp(), "victim", client.Options{OnPush: got.onPush})
	ids := pushAcked(t, nc, "victim", "low", 400, "A")

	forgeTakeover(t, nc, "victim", "nobody", time.Now().Add(time.Hour))
	endedReplaced(t, c)
	reasons := account(t, s, ids, got, a)
	t.Logf("hand-overs: %v", a.Dispatcher.Stats().Handovers) // no_responders, but for a loaded machine's timeouts
	for id, r := range reasons {
		if got.count(id) == 0 && (len(r) != 1 || r[0] != "replaced") {
			t.Errorf("push %s (not delivered) dead-lettered %v; want replaced once", id, r)
		}
	}
}

// endedReplaced waits for c to end, closed as replaced. A rate-limited
// connection's close frame can miss the abrupt close's one-second window
// while its writer sleeps for a token; the socket then just closes, which
// is allowed here (the test is about the pushes, not the frame).
func endedReplaced(t testing.TB, c *client.Conn) {
	t.Helper()
	waitEnded(t, c)
	var ce *client.CloseError
	switch err := c.Err(); {
	case errors.As(err, &ce) && ce.Reason != "replaced":
		t.Fatalf("connection closed as %s; want replaced", ce.Reason)
	case ce == nil:
		t.Logf("connection ended without a close frame: %v", err)
	}
}

// forgeTakeover publishes a takeover announcement for session, as an edge
// node would, naming node and a connection started at started.
func forgeTakeover(t testing.TB, nc *nats.Conn, session, node string, started time.Time) {
	t.Helper()
	m := &nats.Msg{Subject: protocol.PushSubject(protocol.DefaultPrefix, session, protocol.Control), Header: nats.Header{
		protocol.HeaderControl: {protocol.ControlTakeover}, protocol.HeaderNode: {node},
		protocol.HeaderConn: {strconv.FormatInt(started.UnixNano(), 10)},
	}}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// takenOver forges a takeover of session by node taker, after listening
// where its hand-overs come (session's prio pushes, room for n), waits for
// c to end replaced, and returns the hand-overs' channel.
func takenOver(t testing.TB, nc *nats.Conn, c *client.Conn, session, prio string, n int) chan *nats.Msg {
	t.Helper()
	handovers := make(chan *nats.Msg, n)
	sub, err := nc.ChanSubscribe(protocol.PushSubject(protocol.DefaultPrefix, session, prio), handovers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	forgeTakeover(t, nc, session, "taker", time.Now().Add(time.Hour))
	endedReplaced(t, c)
	return handovers
}

// pushAcked publishes n pushes for session with a reply subject, each
// acknowledged enqueued by node, and returns their ids.
func pushAcked(t testing.TB, nc *nats.Conn, session, prio string, n int, node string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", session, i)
		if ack := request(t, nc, pushMsg(session, prio, ids[i], "")); ack.Status != protocol.StatusEnqueued || ack.Node != node {
			t.Fatalf("push %s: ack %+v; want enqueued by %s", ids[i], ack, node)
		}
	}
	return ids
}

// account waits until every push in ids is delivered (in got),
// dead-lettered (in PUSH_DLQ on s) or counted lost by one of the nodes, and
// returns the dead-letter reasons by push id. Each push is delivered or
// dead-lettered; both only for the documented overlap of a hand-over.
func account(t testing.TB, s *server.Server, ids []string, got *ledger, nodes ...*edgeNode) map[string][]string {
	t.Helper()
	stored := func() (written, lost uint64) {
		for _, n := range nodes {
			st := n.Writer.Stats()
			written, lost = written+st.Written, lost+st.Lost
		}
		return written, lost
	}
	delivered := func() int {
		k := 0
		for _, id := range ids {
			if got.count(id) > 0 {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(testTimeout)
	for {
		w, l := stored()
		if uint64(delivered())+w+l >= uint64(len(ids)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("of %d pushes acked enqueued, %d delivered, %d dead-lettered, %d counted lost: %d unaccounted",
				len(ids), delivered(), w, l, uint64(len(ids))-uint64(delivered())-w-l)
		}
		time.Sleep(5 * time.Millisecond)
	}
	reasons := map[string][]string{}
	for _, dl := range deadLetters(t, s) {
		id := dl.Header.Get(protocol.HeaderID)
		reasons[id] = append(reasons[id], dl.Header.Get(protocol.HeaderReason))
	}
	_, lost := stored()
	missing, both := 0, 0
	for _, id := range ids {
		d, r := got.count(id), reasons[id]
		switch {
		case d == 0 && len(r) == 0:
			missing++
		case d > 0 && len(r) > 0:
			both++
		}
	}
	if uint64(missing) > lost {
		t.Fatalf("%d pushes neither delivered nor dead-lettered, %d counted lost", missing, lost)
	}
	t.Logf("%d pushes: %d delivered, %d dead-lettered (%d of them also delivered: the hand-over overlap), %d lost",
		len(ids), delivered(), len(reasons), both, lost)
	return reasons
}

// What a hand-over looks like on the wire, and how the handing node takes
// each answer. A plain NATS subscriber stands in for the taking node: each
// hand-over is a request from A's inbox under the edges' prefix, carrying
// the producer's reply in Push-Reply only when the producer still waits
// (Push-Ack: written), and none of the headers no node acts on from outside
// (Push-Session, Nats-*). Answered enqueued: taken; dead: the taker
// dead-lettered it; unanswered: A dead-letters it replaced after the
// timeout and tells a producer that still waits.
func TestHandoverAnswers(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.Rate, cfg.Edge.Burst = 5, 1
	cfg.Bus.HandoverTimeout = 300 * time.Millisecond
	a := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	acks := newAckBook(t, nc)
	got := &ledger{seen: map[string]int{}}
	c := dial(t, a.tcp(), "taken", client.Options{OnPush: got.onPush})
	var ids []string
	written := map[string]bool{}
	for i := range 30 {
		id := fmt.Sprintf("taken-%d", i)
		ids, written[id] = append(ids, id), i%2 == 0
		m := pushMsg("taken", "low", id, "")
		m.Reply = acks.inbox + id
		m.Header.Set(protocol.HeaderSession, "mallory")
		m.Header.Set("Nats-Expected-Stream", "nope")
		if written[id] {
			m.Header.Set(protocol.HeaderAck, protocol.AckWritten)
		}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the enqueued acks", func() bool { return acks.answered(ids[len(ids)-1:]) })

	handovers := takenOver(t, nc, c, "taken", "low", len(ids))

	answer := map[string]string{} // push id → how the stand-in answered
	for range len(ids) - len(got.seen) {
		var m *nats.Msg
		select {
		case m = <-handovers:
		case <-timeout(t).Done():
			t.Fatalf("%d hand-overs; want one per push not delivered (%d of %d delivered)", len(answer), len(got.seen), len(ids))
		}
		id := m.Header.Get(protocol.HeaderID)
		if !strings.HasPrefix(m.Reply, protocol.EdgeInboxPrefix(protocol.DefaultPrefix)) {
			t.Fatalf("hand-over of %s with reply subject %q; want one under %s", id, m.Reply, protocol.EdgeInboxPrefix(protocol.DefaultPrefix))
		}
		if pr, want := m.Header.Get(protocol.HeaderReply), acks.inbox+id; written[id] != (pr == want) || !written[id] && pr != "" {
			t.Errorf("hand-over of %s (written: %v) carries Push-Reply %q", id, written[id], pr)
		}
		for k := range m.Header {
			if k == protocol.HeaderSession || strings.HasPrefix(k, "Nats-") {
				t.Errorf("hand-over of %s carries %s", id, k)
			}
		}
		switch len(answer) % 3 {
		case 0:
			answer[id] = protocol.StatusEnqueued
		case 1:
			answer[id] = protocol.StatusDead
		default:
			answer[id] = "" // no answer
		}
		if answer[id] != "" {
			if err := nc.PublishMsg(protocol.Ack{Status: answer[id], Reason: "queue_full", Node: "taker", ID: id}.Msg(m.Reply)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := bus.HandoverStats{bus.HandoverTaken: 0, bus.HandoverDead: 0, bus.HandoverTimeout: 0, bus.HandoverNoResponders: 0, bus.HandoverUnsent: 0}
	outcome := map[string]string{protocol.StatusEnqueued: bus.HandoverTaken, protocol.StatusDead: bus.HandoverDead, "": bus.HandoverTimeout}
	for _, a := range answer {
		want[outcome[a]]++
	}
	waitFor(t, "every hand-over settled", func() bool { return a.Dispatcher.Stats().Waiting == 0 })
	if st := a.Dispatcher.Stats().Handovers; fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("hand-overs %v; want %v", st, want)
	}
	waitFor(t, "A's dead letters written", func() bool { // one per hand-over that timed out, made after it was counted
		w, made := a.Writer.Stats(), a.Dispatcher.Stats().DeadLetters
		return made >= want[bus.HandoverTimeout] && w.Written+w.Lost == made
	})
	reasons := map[string][]string{}
	for _, dl := range deadLetters(t, s) {
		id := dl.Header.Get(protocol.HeaderID)
		reasons[id] = append(reasons[id], dl.Header.Get(protocol.HeaderReason))
	}
	for id, how := range answer {
		r := reasons[id]
		switch {
		case how == "" && (len(r) != 1 || r[0] != "replaced"):
			t.Errorf("unanswered hand-over of %s dead-lettered %v; want replaced", id, r)
		case how != "" && len(r) != 0:
			t.Errorf("hand-over of %s answered %s, yet dead-lettered %v here", id, how, r)
		}
		if ack, ok := acks.first(id); how == "" && written[id] && (!ok || ack.Status != protocol.StatusDead || ack.Reason != "replaced") {
			t.Errorf("producer of unanswered %s (waiting for written) got %+v; want dead replaced", id, ack)
		}
	}
}

// Hand-overs still waiting for an answer when the node stops are settled
// before it has stopped: a taker that never answers leaves them to the
// timeout, and they are in PUSH_DLQ as replaced once the node is down.
func TestHandoversInFlightAtStop(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.Rate, cfg.Edge.Burst = 5, 1
	cfg.Bus.HandoverTimeout = time.Second
	a := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	got := &ledger{seen: map[string]int{}}
	c := dial(t, a.tcp(), "stopping", client.Options{OnPush: got.onPush})
	ids := pushAcked(t, nc, "stopping", "high", 50, "A")
	silent := takenOver(t, nc, c, "stopping", "high", len(ids)) // takes hand-overs, never answers
	waitFor(t, "every queued push handed over", func() bool { return len(silent)+len(got.seen) == len(ids) })
	if w := a.Dispatcher.Stats().Waiting; w == 0 {
		t.Logf("the hand-overs were settled before the stop") // a loaded machine took over a second
	}

	a.shutdown(t)
	if st := a.Dispatcher.Stats(); st.Waiting != 0 || st.Handovers[bus.HandoverTimeout] != uint64(len(silent)) {
		t.Fatalf("after the stop: %d hand-overs waiting, %v; want none waiting, %d timed out", st.Waiting, st.Handovers, len(silent))
	}
	reasons := account(t, s, ids, got, a)
	for id, r := range reasons {
		if len(r) != 1 || r[0] != "replaced" {
			t.Errorf("push %s dead-lettered %v; want replaced once", id, r)
		}
	}
}
