package tests

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"pgregory.net/rapid"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// propertyChecks caps this file's property: each case runs real clients
// through two edge nodes on a real NATS server (tens of milliseconds), so
// it runs at most this many cases, however many RAPID_CHECKS asks for.
const propertyChecks = 100

// Property (issue 11): whatever the interleaving of connects and
// disconnects on two nodes, forged takeovers and pushes in flight (some
// waiting for `written`, queued behind a rate limit when the session
// moves), every push that was acknowledged ends delivered, dead-lettered
// with a reason, or counted lost; a push acknowledged dead is in PUSH_DLQ
// (or counted lost), and one acknowledged written was delivered.
//
// A disconnect is the node closing the connection (as for idle, too_slow
// or a kick): the client reads to the end, so what the node wrote is in the
// ledger. (A client that closes its own socket may drop pushes already on
// the wire to it, which no node can tell apart from delivered ones; the
// flapping test has the client leave.)
func TestHandoverProperty(t *testing.T) {
	capChecks(t, propertyChecks)
	s := natstest.Server(t)
	nodes := map[string]*edgeNode{}
	for _, name := range []string{"A", "B"} {
		cfg := edgeConfig(t, s, name)
		cfg.Edge.Rate, cfg.Edge.Burst = 400, 1        // a few pushes are still queued when the session moves
		cfg.Edge.DrainTimeout = 10 * time.Millisecond // and some when it is closed: dead-lettered closed
		nodes[name] = startEdge(t, cfg)
	}
	nc := natstest.Connect(t, s)
	acks := newAckBook(t, nc)
	got := &ledger{seen: map[string]int{}}
	store, err := dlq.Open(timeout(t), natstest.JetStream(t, s), protocol.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	tally := map[string]int{}
	defer func() {
		t.Logf("over %d cases: %v; hand-overs by A %v, by B %v", cases, tally,
			nodes["A"].Dispatcher.Stats().Handovers, nodes["B"].Dispatcher.Stats().Handovers)
	}()
	rapid.Check(t, func(rt *rapid.T) {
		cases++
		session := fmt.Sprintf("prop%d", cases)
		lostBefore := lostOn(nodes)
		var live []*client.Conn
		var ids []string
		steps := rapid.IntRange(1, 10).Draw(rt, "steps")
		for i := range steps {
			switch op := rapid.SampledFrom([]string{"connect", "connect", "disconnect", "push", "push", "takeover"}).Draw(rt, "op"); op {
			case "connect":
				node := rapid.SampledFrom([]string{"A", "B"}).Draw(rt, "node")
				live = append(live, dial(t, nodes[node].tcp(), session, client.Options{OnPush: got.onPush}))
			case "disconnect":
				closeOn(nodes[rapid.SampledFrom([]string{"A", "B"}).Draw(rt, "node")], session)
			case "push":
				n := rapid.IntRange(1, 20).Draw(rt, "pushes")
				written := rapid.Bool().Draw(rt, "written")
				for k := range n {
					id := fmt.Sprintf("%s-%d-%d", session, i, k)
					ids = append(ids, id)
					acks.publish(t, session, id, written)
				}
			case "takeover":
				forgeTakeover(t, nc, session, "ghost", time.Now())
			}
		}
		for _, n := range nodes {
			closeOn(n, session)
		}
		for _, c := range live {
			waitEnded(t, c) // its pushes are all in the ledger
		}
		settle(t, nodes, acks, ids)

		reasons := map[string][]string{}
		err := store.Each(timeout(t), dlq.Filter{Session: session}, func(e dlq.Entry) error {
			reasons[e.ID()] = append(reasons[e.ID()], string(e.Reason()))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		lost := lostOn(nodes) - lostBefore
		missing := uint64(0)
		for _, id := range ids {
			a, ok := acks.first(id)
			if !ok {
				continue // no responders: no node held the session, and a plain request keeps nothing
			}
			d, dead := got.count(id), reasons[id]
			tally["acked "+a.Status]++
			if d > 0 {
				tally["delivered"]++
			}
			for _, r := range dead {
				tally["dead "+r]++
				if r == "" || r == "invalid" {
					rt.Fatalf("push %s dead-lettered with reason %q", id, r)
				}
			}
			switch {
			case d == 0 && len(dead) == 0:
				missing++
			case a.Status == protocol.StatusWritten && d == 0:
				rt.Fatalf("push %s acked written by %s, never delivered (dead-lettered %v)", id, a.Node, dead)
			case a.Status == protocol.StatusDead && len(dead) == 0:
				missing++ // acked dead, not in the stream: only a lost dead letter explains it
			}
		}
		if missing > lost {
			rt.Fatalf("%d acknowledged pushes neither delivered nor dead-lettered, %d counted lost", missing, lost)
		}
	})
}

// closeOn closes the connection holding session on n, if there is one, as
// the node does on its own (close reason normal).
func closeOn(n *edgeNode, session string) {
	if c := n.Server.Registry().Get(session); c != nil {
		c.Close(wire.CloseNormal)
	}
}

// capChecks lowers rapid's case count for this test to at most n.
func capChecks(t *testing.T, n int) {
	f := flag.Lookup("rapid.checks")
	old := f.Value.String()
	if k, err := strconv.Atoi(old); err == nil && k <= n {
		return
	}
	if err := f.Value.Set(strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

func lostOn(nodes map[string]*edgeNode) uint64 {
	var lost uint64
	for _, n := range nodes {
		lost += n.Writer.Stats().Lost
	}
	return lost
}

// settle waits until the nodes are idle: no connection open (a closing
// one dead-letters what it still holds after its socket is closed, so the
// client's end says nothing), no session subscribed, no hand-over waiting,
// every dead letter written or counted lost, and every push answered (an
// ack, or no responders).
func settle(t *testing.T, nodes map[string]*edgeNode, acks *ackBook, ids []string) {
	t.Helper()
	waitFor(t, "the nodes to settle", func() bool {
		for _, n := range nodes {
			st, w := n.Dispatcher.Stats(), n.Writer.Stats()
			if n.Server.Len() != 0 || st.Sessions != 0 || st.Waiting != 0 || w.Written+w.Lost != st.DeadLetters {
				return false
			}
		}
		return acks.answered(ids)
	})
}

// ackBook publishes pushes with a reply subject each and records the
// answers: the edge's acks and the server's no responders.
type ackBook struct {
	nc    *nats.Conn
	inbox string

	mu      sync.Mutex
	answers map[string][]*nats.Msg // guarded by mu, by push id
}

func newAckBook(t *testing.T, nc *nats.Conn) *ackBook {
	b := &ackBook{nc: nc, inbox: nc.NewInbox() + ".", answers: map[string][]*nats.Msg{}}
	sub, err := nc.Subscribe(b.inbox+"*", func(m *nats.Msg) {
		b.mu.Lock()
		id := strings.TrimPrefix(m.Subject, b.inbox)
		b.answers[id] = append(b.answers[id], m)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return b
}

func (b *ackBook) publish(t *testing.T, session, id string, written bool) {
	m := pushMsg(session, "low", id, "")
	m.Reply = b.inbox + id
	if written {
		m.Header.Set(protocol.HeaderAck, protocol.AckWritten)
	}
	if err := b.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

func (b *ackBook) answered(ids []string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if len(b.answers[id]) == 0 {
			return false
		}
	}
	return true
}

// first returns the first ack for id; false if there was none (no
// responders).
func (b *ackBook) first(id string) (protocol.Ack, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.answers[id] {
		if a, err := protocol.ParseAck(m); err == nil {
			return a, true
		}
	}
	return protocol.Ack{}, false
}
