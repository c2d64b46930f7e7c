package edge_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Each push's receipt is told once that it was written, in order, batch
// after batch, and nothing else; pushes without a receipt go out beside
// them, and the sink hears of none.
func TestReceiptsAreToldWrittenOnce(t *testing.T) {
	g := newGate()
	rl := newReceiptLog()
	n := startNode(t, edge.DefaultConfig(), edge.Options{Hooks: edge.Hooks{BeforeSend: g.beforeSend}})
	c := dial(t, n.tcp, "told", client.Options{})
	h := n.handle(t, "told")
	release := g.hold(t, h) // what follows is queued, and goes out in one batch
	want := []string{"gate"}
	for _, id := range []string{"r1", "r2", "plain", "r3"} {
		e := rl.push(id)
		if id == "plain" {
			e = pushOf(id, id)
		}
		if err := h.TryPush(push.High, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	release()
	mustTryPush(t, h, push.Low, "later")
	if err := h.TryPush(push.Low, rl.push("r4")); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(want, "later", "r4") {
		if f := recv(t, c); f.ID != id {
			t.Fatalf("got %s; want %s", f.ID, id)
		}
	}
	rl.wait(t, 4)
	_ = c.Close()
	waitDone(t, h)
	if got, want := rl.all(), []string{"written r1", "written r2", "written r3", "written r4"}; !slices.Equal(got, want) {
		t.Fatalf("receipts told %q; want %q", got, want)
	}
	if dls := n.sink.all(); len(dls) > 0 {
		t.Fatalf("the sink got %+v; want nothing", dls)
	}
}

// A push with a receipt that dies is the receipt's to dead-letter: expired
// in the queue, refused by TryPush under the dead-letter policy, or still
// queued when the connection ends. The sink gets only the pushes without
// one.
func TestReceiptTakesItsPushsDeath(t *testing.T) {
	g := newGate()
	rl := newReceiptLog()
	cfg := edge.DefaultConfig()
	cfg.QueueLen, cfg.TryPush = 2, edge.TryPushDeadLetters
	n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{BeforeSend: g.beforeSend}})
	c := dial(t, n.tcp, "mortal", client.Options{})
	h := n.handle(t, "mortal")
	release := g.hold(t, h)
	stale := rl.push("stale")
	stale.Expires = time.Now().Add(-time.Second)
	tryPush(t, h, stale, nil)
	tryPush(t, h, rl.push("kept"), nil)
	tryPush(t, h, rl.push("full"), edge.ErrQueueFull)
	tryPush(t, h, pushOf("full-plain", ""), edge.ErrQueueFull)
	release()
	for _, id := range []string{"gate", "kept"} {
		if f := recv(t, c); f.ID != id {
			t.Fatalf("got %s; want %s", f.ID, id)
		}
	}
	rl.wait(t, 3)
	if got, want := rl.all(), []string{"dead full queue_full", "dead stale expired", "written kept"}; !slices.Equal(got, want) {
		t.Fatalf("receipts told %q; want %q", got, want)
	}
	if dls := n.sink.all(); len(dls) != 1 || dls[0].Frame.ID != "full-plain" || dls[0].Reason != push.ReasonQueueFull {
		t.Fatalf("the sink got %+v; want full-plain as queue_full", dls)
	}
}

// tryPush pushes e at high priority and checks TryPush's error is, or
// wraps, want.
func tryPush(t *testing.T, h *edge.Conn, e edge.Envelope, want error) {
	t.Helper()
	if err := h.TryPush(push.High, e); !errors.Is(err, want) {
		t.Fatalf("TryPush %s: %v; want %v", e.Frame.ID, err, want)
	}
}

// When the connection ends with pushes still queued, their receipts are
// told they are dead (closed); those without one go to the sink.
func TestReceiptsOfAClosedConnection(t *testing.T) {
	rl := newReceiptLog()
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1 // one push now, the next in 1,000 s
	n := startNode(t, cfg, edge.Options{})
	c := dial(t, n.tcp, "leaving", client.Options{})
	h := n.handle(t, "leaving")
	for _, e := range []edge.Envelope{rl.push("r0"), rl.push("r1"), pushOf("plain", ""), rl.push("r2")} {
		tryPush(t, h, e, nil)
	}
	if f := recv(t, c); f.ID != "r0" {
		t.Fatalf("got %s; want r0", f.ID)
	}
	rl.wait(t, 1)
	_ = c.Close()
	waitDone(t, h)
	if got, want := rl.all(), []string{"written r0", "dead r1 closed", "dead r2 closed"}; !slices.Equal(got, want) {
		t.Fatalf("receipts told %q; want %q", got, want)
	}
	if dls := n.sink.all(); len(dls) != 1 || dls[0].Frame.ID != "plain" || dls[0].Reason != push.ReasonClosed {
		t.Fatalf("the sink got %+v; want plain as closed", dls)
	}
}

// CloseReplaced (a newer connection on another node took the session)
// tells each queued push's receipt it moved with its session, in order,
// and passes the pushes without one to forward; one forward refuses is
// dead-lettered as replaced.
func TestCloseReplacedMovesPushesWithTheirReceipts(t *testing.T) {
	rl := newReceiptLog()
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1
	n := startNode(t, cfg, edge.Options{})
	c := dial(t, n.tcp, "roamer", client.Options{})
	h := n.handle(t, "roamer")
	for _, e := range []edge.Envelope{pushOf("first", ""), rl.push("r1"), pushOf("n1", ""), rl.push("r2"), pushOf("n2", "")} {
		tryPush(t, h, e, nil)
	}
	if f := recv(t, c); f.ID != "first" {
		t.Fatalf("got %s; want first", f.ID)
	}
	var forwarded []string
	h.CloseReplaced(func(e edge.Envelope) error {
		forwarded = append(forwarded, e.Frame.ID)
		if e.Frame.ID == "n2" {
			return errors.New("no room")
		}
		return nil
	})
	if got, want := rl.all(), []string{"moved r1 to roamer", "moved r2 to roamer"}; !slices.Equal(got, want) {
		t.Fatalf("receipts told %q; want %q", got, want)
	}
	if want := []string{"n1", "n2"}; !slices.Equal(forwarded, want) {
		t.Fatalf("forwarded %q; want %q", forwarded, want)
	}
	if dls := n.sink.waitLen(t, 1); dls[0].Frame.ID != "n2" || dls[0].Reason != push.ReasonReplaced {
		t.Fatalf("dead letters %+v; want n2 as replaced", dls)
	}
	if got := drain(t, c, wire.CloseReplaced); len(got) > 0 {
		t.Fatalf("the replaced client got %q after first", got)
	}
	waitDone(t, h)
	if got := rl.all(); len(got) != 2 {
		t.Fatalf("receipts told %q after the connection ended; want only the moves", got)
	}
}

// A newer connection on the same node takes the queued pushes with their
// receipts: they are written there, and told so, not moved.
func TestTakeoverWithinNodeKeepsReceipts(t *testing.T) {
	g := newGate()
	rl := newReceiptLog()
	cfg := edge.DefaultConfig()
	cfg.Flushers = 0 // the gate holds one writer; the new connection needs another
	n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{BeforeSend: g.beforeSend}})
	dial(t, n.ws, "s1", client.Options{})
	h := n.handle(t, "s1")
	release := g.hold(t, h)
	tryPush(t, h, rl.push("queued-1"), nil)
	tryPush(t, h, rl.push("queued-2"), nil)
	fresh := dial(t, n.tcp, "s1", client.Options{})
	release()
	for _, want := range []string{"queued-1", "queued-2"} {
		if f := recv(t, fresh); f.ID != want {
			t.Fatalf("new connection got %s; want %s", f.ID, want)
		}
	}
	waitDone(t, h)
	if got, want := rl.wait(t, 2), []string{"written queued-1", "written queued-2"}; !slices.Equal(got, want) {
		t.Fatalf("receipts told %q; want %q", got, want)
	}
	n.stop(t)
	if got := rl.all(); len(got) != 2 {
		t.Fatalf("receipts told %q by the end; want each push settled once", got)
	}
}
