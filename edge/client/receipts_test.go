package client_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/push"
)

// confirmations records the receipt-pushes the edge saw confirmed.
type confirmations struct {
	mu  sync.Mutex
	ids []string // guarded by mu
}

type confirmedReceipt struct{ c *confirmations }

func (r confirmedReceipt) Written(*edge.Envelope)       {}
func (r confirmedReceipt) Dead(edge.DeadLetter)         {}
func (r confirmedReceipt) Moved(string, *edge.Envelope) {}
func (r confirmedReceipt) Confirmed(e *edge.Envelope) {
	r.c.mu.Lock()
	r.c.ids = append(r.c.ids, e.Frame.ID)
	r.c.mu.Unlock()
}

func (c *confirmations) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

// pushReceipt queues a receipt-push for session on n, whose confirmation
// c records.
func (n *testNode) pushReceipt(t *testing.T, c *confirmations, session, id string) {
	t.Helper()
	waitFor(t, "session "+session+" on the node", func() bool { return n.srv.Registry().Get(session) != nil })
	e := edge.Envelope{Frame: edge.Frame{ID: id, WantsReceipt: true}, Receipt: confirmedReceipt{c}}
	if err := n.srv.Registry().Get(session).TryPush(push.High, e); err != nil {
		t.Fatalf("push %s: %v", id, err)
	}
}

func dialConn(t *testing.T, addr, session string, o client.Options) *client.Conn {
	t.Helper()
	o.Session = session
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A Conn confirms each push that asks, once the application took it from
// Recv (or OnPush returned), on both transports; plain pushes are not
// confirmed.
func TestConnConfirmsWhatTheApplicationTook(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	for _, addr := range []string{n.tcp, n.ws} {
		var got confirmations
		c := dialConn(t, addr, "recv", client.Options{})
		n.pushReceipt(t, &got, "recv", "r1")
		n.push(t, "recv", "plain")
		n.pushReceipt(t, &got, "recv", "r2")
		for _, want := range []string{"r1", "plain", "r2"} {
			f, err := c.Recv(t.Context())
			if err != nil || f.ID != want || f.WantsReceipt != (want != "plain") {
				t.Fatalf("recv: %v, %s (wants a receipt: %v); want %s", err, f.ID, f.WantsReceipt, want)
			}
		}
		waitFor(t, "both confirmed", func() bool { return got.count() == 2 })
		_ = c.Close()
		waitFor(t, "the connection gone", func() bool { return n.srv.Registry().Get("recv") == nil })

		var onPush confirmations
		dialConn(t, addr, "handler", client.Options{OnPush: func(client.Frame) {}})
		n.pushReceipt(t, &onPush, "handler", "h1")
		waitFor(t, "h1 confirmed after OnPush", func() bool { return onPush.count() == 1 })
	}
}

// With ManualReceipts nothing is confirmed until the application calls
// Confirm.
func TestManualReceipts(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	var got confirmations
	c := dialConn(t, n.tcp, "manual", client.Options{ManualReceipts: true})
	n.pushReceipt(t, &got, "manual", "m1")
	n.pushReceipt(t, &got, "manual", "m2")
	for range 2 {
		if _, err := c.Recv(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	n.push(t, "manual", "marker") // written after m1 and m2: by the time it is read, they were not confirmed
	if f, err := c.Recv(t.Context()); err != nil || f.ID != "marker" {
		t.Fatalf("recv: %v, %s; want marker", err, f.ID)
	}
	if s := n.srv.Stats(); s.ReceiptFrames != 0 || got.count() != 0 {
		t.Fatalf("%d receipt frames, %d confirmed before Confirm; want none", s.ReceiptFrames, got.count())
	}
	if err := c.Confirm("m2", "m1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both confirmed", func() bool { return got.count() == 2 })
}

// A Session confirms a repeat of a push it showed (handed on by the edge
// after a reconnect) without showing it again.
func TestSessionConfirmsRepeatsUnseen(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	var got confirmations
	s, rec := connect(t, n.tcp, "me", fast)
	n.pushReceipt(t, &got, "me", "x")
	if id := recvID(t, s); id != "x" {
		t.Fatalf("got %s; want x", id)
	}
	waitFor(t, "x confirmed", func() bool { return got.count() == 1 })
	n.accepted.cut()
	rec.reconnected(t, 2)
	n.pushReceipt(t, &got, "me", "x")
	n.pushReceipt(t, &got, "me", "y")
	if id := recvID(t, s); id != "y" {
		t.Fatalf("got %s after the repeat of x; want y", id)
	}
	waitFor(t, "the repeat and y confirmed", func() bool { return got.count() == 3 })
	if s.Duplicates() != 1 {
		t.Fatalf("%d duplicates; want 1", s.Duplicates())
	}
}

// With ManualReceipts a Session confirms a repeat only once the
// application has confirmed the push it showed: a repeat of one it has
// not (still at work on it, or never done) is dropped unconfirmed, so that
// the producer hears received only for what the application confirmed.
func TestSessionManualRepeatWaitsForTheApplication(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	var got confirmations
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	s, err := client.Connect(ctx, n.tcp, client.Options{Session: "me", ManualReceipts: true}, fast)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	n.pushReceipt(t, &got, "me", "x")
	if id := recvID(t, s); id != "x" {
		t.Fatalf("got %s; want x", id)
	}
	n.pushReceipt(t, &got, "me", "x") // the producer publishes it again
	waitFor(t, "the repeat dropped", func() bool { return s.Duplicates() == 1 })
	n.pushReceipt(t, &got, "me", "y")
	if id := recvID(t, s); id != "y" { // Recv sends what the Session had to confirm
		t.Fatalf("got %s; want y", id)
	}
	if err := s.Confirm("y"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "y confirmed", func() bool { return got.count() >= 1 })
	got.mu.Lock()
	early := slices.Clone(got.ids)
	got.mu.Unlock()
	if !slices.Equal(early, []string{"y"}) {
		t.Fatalf("confirmed %q before the application confirmed x; want only y", early)
	}
	if err := s.Confirm("x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both x confirmed", func() bool { return got.count() == 3 })
	n.pushReceipt(t, &got, "me", "x") // a repeat of one the application confirmed is confirmed again
	waitFor(t, "the confirmed repeat confirmed", func() bool { return got.count() == 4 })
}
