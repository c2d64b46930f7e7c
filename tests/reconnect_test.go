package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The NATS server restarts (same port, same JetStream storage) under a
// connected session on A, with B beside it (docs/running.md, "When NATS
// goes away"). While NATS is away neither node takes new clients — not a
// second connection for the session on B, not a new session on A — and
// both say not ready. A stays
// away a little longer than the server (it reaches NATS through a proxy
// the test holds shut): a push published meanwhile finds no subscriber and
// the producer client parks it offline. When A is back it announces its
// session again, with the connection's original start time, and queues
// the parked push for the client that never left.
func TestNATSRestartUnderAConnectedSession(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Port = natstest.FreePort(t)
	s := natstest.StartWith(t, opts)
	proxy := startProxy(t, s.Addr().String())
	cfgA := edgeConfig(t, s, "A")
	cfgA.Bus.URLs, cfgA.Bus.RedeliverOffline = []string{proxy.url()}, true
	a := startEdge(t, cfgA)
	b := startEdge(t, edgeConfig(t, s, "B"))
	c := dial(t, a.tcp(), "held", client.Options{})
	started := a.Server.Registry().Get("held").Started().UnixNano()

	proxy.cut()
	s.Shutdown()
	s.WaitForShutdown()
	for _, n := range []*edgeNode{a, b} {
		waitFor(t, "the node to see NATS gone", func() bool { return !n.Bus.NC.IsConnected() })
		if code, body := getStatus(t, fmt.Sprintf("http://%s/readyz", n.Addr("admin"))); code != 503 || !strings.Contains(body, "NATS") {
			t.Fatalf("/readyz without NATS: %d %s; want 503 naming NATS", code, body)
		}
	}
	refused(t, b.tcp(), "held")
	refused(t, a.ws(), "newcomer")
	refused(t, a.ws(), "held") // refused before it takes the session: c stays

	s = natstest.StartWith(t, opts)
	waitFor(t, "B back on NATS", func() bool { return b.Bus.NC.IsConnected() })
	nc := natstest.Connect(t, s)
	parkOffline(t, nc, "held", "parked-1")
	announced := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(protocol.PushSubject(protocol.DefaultPrefix, "held", protocol.Control), announced)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	proxy.restore()
	var m *nats.Msg
	select {
	case m = <-announced:
	case <-timeout(t).Done():
		t.Fatal("A did not announce its session again")
	}
	if node, conn := m.Header.Get(protocol.HeaderNode), m.Header.Get(protocol.HeaderConn); node != "A" || conn != strconv.FormatInt(started, 10) {
		t.Fatalf("announcement by %s of a connection started %s; want A's, started %d", node, conn, started)
	}
	if f := recv(t, c); f.ID != "parked-1" {
		t.Fatalf("got %s; want the parked push parked-1", f.ID)
	}
	store, err := dlq.Open(timeout(t), natstest.JetStream(t, s), protocol.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivered push out of the stream", func() bool {
		n := 0
		_ = store.Each(timeout(t), dlq.Filter{Session: "held"}, func(dlq.Entry) error { n++; return nil })
		return n == 0
	})
	dial(t, b.tcp(), "newcomer", client.Options{}) // ready again
}

// A takeover announced while A was away from NATS: the session connects
// to B (whose NATS is fine) while A cannot hear it. When A is back, its
// announcement of the older connection makes B answer with its own, and A
// closes its connection as replaced: one live connection per session again.
func TestTakeoverMissedDuringAnOutageIsResolved(t *testing.T) {
	s := natstest.Server(t)
	proxy := startProxy(t, s.Addr().String())
	cfgA := edgeConfig(t, s, "A")
	cfgA.Bus.URLs = []string{proxy.url()}
	a := startEdge(t, cfgA)
	b := startEdge(t, edgeConfig(t, s, "B"))
	old := dial(t, a.tcp(), "twice", client.Options{})

	proxy.cut()
	waitFor(t, "A to see NATS gone", func() bool { return !a.Bus.NC.IsConnected() })
	fresh := dial(t, b.ws(), "twice", client.Options{})
	proxy.restore()
	waitEnded(t, old)
	if !isClose(old.Err(), "replaced") {
		t.Fatalf("A's connection ended with %v; want replaced", old.Err())
	}
	nc := natstest.Connect(t, s)
	if ack := request(t, nc, pushMsg("twice", "high", "after", "")); ack.Node != "B" {
		t.Fatalf("push acked %+v; want by B", ack)
	}
	if f := recv(t, fresh); f.ID != "after" {
		t.Fatalf("got %s; want after", f.ID)
	}
}

// waitEnded waits, within the test's ceiling, for c to end.
func waitEnded(t testing.TB, c *client.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-timeout(t).Done():
		t.Fatal("the connection is still open")
	}
}

// refused checks that a client for session is turned away with close
// reason shutdown (reconnect, elsewhere if possible).
func refused(t *testing.T, addr, session string) {
	t.Helper()
	c, err := client.Dial(timeout(t), addr, client.Options{Token: mint(t, session)})
	if err == nil {
		_ = c.Close()
		t.Fatalf("%s connected to %s while its NATS was down", session, addr)
	}
	if !isClose(err, "shutdown") {
		t.Fatalf("%s on %s: %v; want refused with close reason shutdown", session, addr, err)
	}
}

// parkOffline pushes id to session through the producer client, which
// finds no subscriber and parks it offline, and waits until the dead
// letter is written.
func parkOffline(t *testing.T, nc *nats.Conn, session, id string) {
	t.Helper()
	p, err := producer.New(nc, producer.Options{Name: "parker"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Push(timeout(t), session, push.High, []byte("x"), producer.WithID(id))
	if err != nil || ack.Status != protocol.StatusDead || ack.Reason != "offline" {
		t.Fatalf("push %s: %+v, %v; want parked offline", id, ack, err)
	}
	if err := p.Close(timeout(t)); err != nil { // writes the dead letter
		t.Fatal(err)
	}
}
