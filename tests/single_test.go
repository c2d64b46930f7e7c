package tests

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// Pushes published with nats.go reach WebSocket and TCP clients, with the
// acknowledgements docs/pushing.md specifies.
func TestPushesOverNATSReachClients(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	for _, addr := range []string{n.ws(), n.tcp()} {
		session := "s-" + addr[:2]
		c := dial(t, addr, session, client.Options{})

		// A plain publish, no reply: no ack, delivered.
		if err := nc.PublishMsg(pushMsg(session, "low", "p1", "one")); err != nil {
			t.Fatal(err)
		}
		if f := recv(t, c); f.ID != "p1" || string(f.Payload) != "one" || f.Priority.String() != "low" {
			t.Fatalf("%s: got %v %s %q", addr, f.Priority, f.ID, f.Payload)
		}

		// A request: acked enqueued, by default.
		ack := request(t, nc, pushMsg(session, "high", "p2", "two"))
		if ack.Status != "enqueued" || ack.Node != "n1" || ack.ID != "p2" {
			t.Fatalf("%s: ack %+v; want enqueued by n1 for p2", addr, ack)
		}
		if f := recv(t, c); f.ID != "p2" {
			t.Fatalf("got %s; want p2", f.ID)
		}

		// Push-Ack: written comes once the client has it.
		m := pushMsg(session, "high", "p3", "three")
		m.Header.Set(protocol.HeaderAck, protocol.AckWritten)
		m.Header.Set(protocol.HeaderContentType, "text/plain")
		if ack := request(t, nc, m); ack.Status != "written" || ack.ID != "p3" {
			t.Fatalf("ack %+v; want written", ack)
		}
		if f := recv(t, c); f.ID != "p3" || f.ContentType != "text/plain" {
			t.Fatalf("got %s %q", f.ID, f.ContentType)
		}
	}
}

func request(t testing.TB, nc *nats.Conn, m *nats.Msg) protocol.Ack {
	t.Helper()
	reply, err := nc.RequestMsgWithContext(timeout(t), m)
	if err != nil {
		t.Fatalf("request %s: %v", m.Subject, err)
	}
	ack, err := protocol.ParseAck(reply)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Header.Get(protocol.HeaderStatus) != ack.Status {
		t.Fatalf("Push-Status %q, body status %q", reply.Header.Get(protocol.HeaderStatus), ack.Status)
	}
	return ack
}

// Pushes that cannot be queued or parsed are acked dead and are in
// PUSH_DLQ with the headers of docs/dead-letters.md.
func TestDeadLettersAreAckedAndStored(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.QueueLen = 2
	cfg.Edge.Rate, cfg.Edge.Burst = 1, 1 // the queue drains one push a second
	n := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	c := dial(t, n.tcp(), "full", client.Options{})
	for i, want := range []string{"enqueued", "enqueued", "enqueued", "dead"} {
		// the first is written at once; the next two fill the queue
		m := pushMsg("full", "low", fmt.Sprintf("q%d", i), "x")
		m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		ack := request(t, nc, m)
		if ack.Status != want {
			t.Fatalf("push %d: %+v; want %s", i, ack, want)
		}
		if want == "dead" && ack.Reason != "queue_full" {
			t.Fatalf("reason %q; want queue_full", ack.Reason)
		}
		if i == 0 {
			recv(t, c) // q0 is in the client's hands before the queue fills
		}
	}
	invalid := []*nats.Msg{
		{Subject: "push.full.urgent", Data: []byte("bad token")},
		{Subject: "push.full.high", Header: nats.Header{protocol.HeaderExpires: []string{"tomorrow"}}},
		{Subject: "push.full.high", Header: nats.Header{protocol.HeaderAck: []string{"maybe"}}},
	}
	for _, m := range invalid {
		if ack := request(t, nc, m); ack.Status != "dead" || ack.Reason != "invalid" {
			t.Fatalf("%s %v: ack %+v; want dead invalid", m.Subject, m.Header, ack)
		}
	}
	n.shutdown(t) // flushes the dead-letter writer
	dls := deadLetters(t, s)
	byReason := map[string]int{}
	for _, dl := range dls {
		byReason[dl.Header.Get(protocol.HeaderReason)]++
	}
	if byReason["queue_full"] != 1 || byReason["invalid"] != 3 {
		t.Fatalf("dead letters by reason %v; want queue_full 1, invalid 3 (and the queued ones at shutdown)", byReason)
	}
	for _, dl := range dls {
		if dl.Header.Get(protocol.HeaderReason) != "queue_full" {
			continue
		}
		want := map[string]string{
			protocol.HeaderID: "q3", protocol.HeaderSubject: "push.full.low", protocol.HeaderSession: "full",
			protocol.HeaderPriority: "low", protocol.HeaderNode: "n1", protocol.HeaderReplayCount: "0",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		}
		if id := dl.Header.Get(protocol.HeaderDeadID); id == "" || dl.Header.Get(nats.MsgIdHdr) != id {
			t.Errorf("Push-Dead-Id %q, Nats-Msg-Id %q; want the same id", id, dl.Header.Get(nats.MsgIdHdr))
		}
		for k, v := range want {
			if got := dl.Header.Get(k); got != v {
				t.Errorf("header %s = %q; want %q", k, got, v)
			}
		}
		if dl.Subject != "dlq.push.queue_full.full.low" || string(dl.Data) != "x" {
			t.Errorf("subject %s data %q", dl.Subject, dl.Data)
		}
		if _, err := time.Parse(time.RFC3339Nano, dl.Header.Get(protocol.HeaderDeadAt)); err != nil {
			t.Errorf("Push-Dead-At: %v", err)
		}
	}
}

// A flood of low pushes with a few high ones: the highs overtake the
// queued lows within the fairness bound.
func TestHighOvertakesAFloodOfLow(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.Rate, cfg.Edge.Burst = 200, 1 // pushes wait in the queue, 5 ms apart
	n := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	c := dial(t, n.ws(), "flood", client.Options{})
	for i := range 100 {
		_ = nc.PublishMsg(pushMsg("flood", "low", fmt.Sprintf("L%d", i), ""))
	}
	for i := range 3 {
		_ = nc.PublishMsg(pushMsg("flood", "high", fmt.Sprintf("H%d", i), ""))
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var order []string
	for range 103 {
		order = append(order, recv(t, c).ID)
	}
	// The highs arrive together, in order, early: while they wait, the
	// writer takes at most a few lows (one every 5 ms) before they are
	// queued; once queued they go first.
	first := strings.Index(strings.Join(order, " "), "H0 H1 H2")
	if first < 0 {
		t.Fatalf("highs not together and in order: %v", order)
	}
	if lowsBefore := len(strings.Fields(strings.Join(order, " ")[:first])); lowsBefore > 20 {
		t.Fatalf("%d lows went before the highs; want the highs to overtake the flood: %v", lowsBefore, order)
	}
	for i, id := range strings.Fields(strings.ReplaceAll(strings.Join(order, " "), "H0 H1 H2", "")) {
		if id != fmt.Sprintf("L%d", i) {
			t.Fatalf("lows out of order at %d: %v", i, order)
		}
	}
}

// The producer client: Push acks, Publish delivers, and both park pushes
// for offline sessions in the dead-letter stream.
func TestProducerClient(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	p, err := producer.New(nc, producer.Options{Name: "test-producer"})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, n.tcp(), "online", client.Options{})

	ack, err := p.Push(timeout(t), "online", push.High, []byte("acked"), producer.WithID("a1"), producer.WithContentType("text/plain"))
	if err != nil || ack.Status != "enqueued" || ack.ID != "a1" {
		t.Fatalf("Push: %+v %v", ack, err)
	}
	if err := p.Publish("online", push.Low, []byte("fast"), producer.WithID("f1")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a1", "f1"} {
		if f := recv(t, c); f.ID != want {
			t.Fatalf("got %s; want %s", f.ID, want)
		}
	}
	ack, err = p.Push(timeout(t), "offline", push.High, []byte("parked"), producer.WithID("o1"))
	if err != nil || ack.Status != "dead" || ack.Reason != "offline" {
		t.Fatalf("Push to an offline session: %+v %v", ack, err)
	}
	if err := p.Publish("offline", push.Low, []byte("parked too"), producer.WithID("o2")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Push(timeout(t), "bad session!", push.High, nil); err == nil {
		t.Fatal("Push accepted an invalid session")
	}
	if err := p.Close(timeout(t)); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Offline != 2 || st.Published != 2 {
		t.Fatalf("producer stats %+v; want 2 published, 2 offline", st)
	}
	ids := map[string]string{}
	for _, dl := range deadLetters(t, s) {
		ids[dl.Header.Get(protocol.HeaderID)] = dl.Header.Get(protocol.HeaderReason) + "/" + dl.Header.Get(protocol.HeaderNode)
	}
	if ids["o1"] != "offline/test-producer" || ids["o2"] != "offline/test-producer" || len(ids) != 2 {
		t.Fatalf("dead letters %v; want o1 and o2 offline by test-producer", ids)
	}
}

// A token for one session never receives another's pushes; bad tokens are
// refused with close reason auth.
func TestClientAuth(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	a := dial(t, n.ws(), "session-a", client.Options{})
	if a.Session() != "session-a" {
		t.Fatalf("holds %q", a.Session())
	}
	// Asking for another session by name changes nothing: the token rules.
	b, err := client.Dial(timeout(t), n.tcp(), client.Options{Token: mint(t, "session-a"), Session: "session-b"})
	if err != nil || b.Session() != "session-a" {
		t.Fatalf("dial with a token for a, asking for b: %v, holds %q", err, b.Session())
	}
	b.Close()
	<-a.Done() // the second connection took session-a over; a was replaced
	a = dial(t, n.ws(), "session-a", client.Options{})
	_ = nc.PublishMsg(pushMsg("session-b", "high", "for-b", ""))
	_ = nc.PublishMsg(pushMsg("session-a", "high", "for-a", ""))
	if f := recv(t, a); f.ID != "for-a" {
		t.Fatalf("session-a got %s", f.ID)
	}

	expired := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "session-a", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute)),
	})
	expiredToken, err := expired.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, err := token.Mint([]byte(strings.Repeat("k", 40)), "session-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"missing":      "",
		"expired":      expiredToken,
		"wrong secret": otherSecret,
		"garbage":      "eyJ.not.a.token",
	} {
		for _, addr := range []string{n.ws(), n.tcp()} {
			_, err := client.Dial(timeout(t), addr, client.Options{Token: tok})
			var ce *client.CloseError
			if !errors.As(err, &ce) || ce.Reason != "auth" {
				t.Fatalf("%s token on %s: %v; want close reason auth", name, addr, err)
			}
		}
	}
}

// A push published without an id gets one: the client sees it, and a dead
// letter made after the push was queued carries it too.
func TestPushWithoutAnIDGetsOne(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	c := dial(t, n.tcp(), "anon", client.Options{})
	nc := natstest.Connect(t, s)
	if err := nc.Publish("push.anon.high", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, c); f.ID == "" || string(f.Payload) != "plain" {
		t.Fatalf("push %+v: want an id", f)
	}
	stale := &nats.Msg{Subject: "push.anon.low", Data: []byte("stale"),
		Header: nats.Header{protocol.HeaderExpires: {time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)}}}
	if err := nc.PublishMsg(stale); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stale push's dead letter", func() bool { return len(deadLetters(t, s)) == 1 })
	if dl := deadLetters(t, s)[0]; dl.Header.Get(protocol.HeaderID) == "" || dl.Header.Get(protocol.HeaderReason) != "expired" {
		t.Fatalf("dead letter headers %v: want an id and reason expired", dl.Header)
	}
}
