package edge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// A panic on a connection's write side (a BeforeSend hook or a receipt
// told a push was written, on the shared flusher or on the connection's own
// writer goroutine)
// closes that connection only, with reason protocol, and is logged and
// counted; every push the connection held is written or dead-lettered
// closed, and the other sessions keep getting theirs.
func TestWriteSidePanicClosesOnlyItsConnection(t *testing.T) {
	for _, flushers := range []int{1, 0} {
		for _, hook := range []string{"BeforeSend", "Written"} {
			t.Run(fmt.Sprintf("%s/flushers=%d", hook, flushers), func(t *testing.T) {
				testWriteSidePanic(t, hook, flushers)
			})
		}
	}
}

func testWriteSidePanic(t *testing.T, hook string, flushers int) {
	var o edge.Options
	if hook == "BeforeSend" {
		o.Hooks.BeforeSend = func(c *edge.Conn, _ *edge.Frame) {
			if c.Session() == "bomb" {
				panic("boom in " + hook)
			}
		}
	}
	b := startBombed(t, o, flushers)

	var r edge.Receipt
	if hook == "Written" {
		r = bombReceipt{b.n.sink}
	}
	queued := tryPushes(t, b.h, 0, 5, time.Time{}, r)
	received := drain(t, b.bomb, wire.CloseProtocol)
	if hook == "BeforeSend" && len(received) > 0 {
		t.Errorf("the client got %q though BeforeSend panicked for every push", received)
	}
	waitDone(t, b.h)
	dead := deadIDs(t, b.n.sink.all(), "bomb", push.ReasonClosed)
	wantAccounted(t, queued, received, dead)
	b.wantContained(t)
}

// A dead-letter sink that panics on the write side (here for a push that
// expired in the queue) closes that connection only; the pushes it still
// held are counted and logged as lost, never handed to the sink again.
func TestSinkPanicOnTheWriteSideCountsTheRestLost(t *testing.T) {
	for _, flushers := range []int{1, 0} {
		t.Run(fmt.Sprintf("flushers=%d", flushers), func(t *testing.T) {
			rec := newRecorder()
			b := startBombed(t, edge.Options{Sink: &panickySink{next: rec, session: "bomb"}}, flushers)

			queued := tryPushes(t, b.h, 0, 1, time.Now().Add(-time.Second), nil) // expired: the writer dead-letters it
			queued = append(queued, tryPushes(t, b.h, 1, 5, time.Time{}, nil)...)
			received := drain(t, b.bomb, wire.CloseProtocol)
			waitDone(t, b.h)
			if dls := rec.all(); len(dls) > 0 {
				t.Errorf("the sink recorded %d dead letters of a panicking session; want none", len(dls))
			}
			lost := lostIDs(t, b.logs)
			if !slices.Contains(lost, "p0") {
				t.Errorf("lost %q; want the expired p0 among them", lost)
			}
			wantAccounted(t, queued, received, lost)
			if got := counter(t, b.reg, "pushfabric_connection_pushes_lost_total", "reason", edge.LostSinkPanic); got != float64(len(lost)) {
				t.Errorf("pushes counted lost: %v; want %d", got, len(lost))
			}
			b.wantContained(t)
		})
	}
}

// bombed is a node whose session bomb panics on the write side, beside a
// session ok that must not notice.
type bombed struct {
	n         *node
	flushers  int // cfg.Flushers: 0 gives each connection its own writer goroutine
	reg       *edge.Metrics
	logs      *observer.ObservedLogs // the node's errors
	bystander *client.Conn           // session ok, over WebSocket
	bomb      *client.Conn           // session bomb, over framed TCP
	h         *edge.Conn             // the node's side of bomb
}

// startBombed starts a node with o and flushers shared flushers, its
// metrics and error logs kept, and connects sessions ok and bomb.
func startBombed(t *testing.T, o edge.Options, flushers int) *bombed {
	t.Helper()
	b := &bombed{flushers: flushers}
	b.reg, b.logs = observeErrors(t, &o)
	cfg := edge.DefaultConfig()
	cfg.Flushers = flushers
	b.n = startNode(t, cfg, o)
	b.bystander = dial(t, b.n.ws, "ok", client.Options{})
	b.bomb = dial(t, b.n.tcp, "bomb", client.Options{})
	b.h = b.n.handle(t, "bomb")
	return b
}

// wantContained checks that session ok still gets its pushes and that one
// panic was counted and logged, on the shared flusher or, with none, on
// bomb's writer goroutine.
func (b *bombed) wantContained(t *testing.T) {
	t.Helper()
	stillServes(t, b.n, b.bystander)
	where := edge.PanicFlusher
	if b.flushers == 0 {
		where = edge.PanicWriter
	}
	if got := counter(t, b.reg, "pushfabric_connection_panics_total", "goroutine", where); got != 1 {
		t.Errorf("panics on %s goroutines: %v; want 1", where, got)
	}
	wantPanicLogged(t, b.logs, where)
}

// observeErrors registers o's metrics and logs its errors, and returns both.
func observeErrors(t *testing.T, o *edge.Options) (*edge.Metrics, *observer.ObservedLogs) {
	t.Helper()
	reg := withMetrics(t, o)
	core, logs := observer.New(zap.ErrorLevel)
	o.Logger = zap.New(core)
	return reg, logs
}

// panickySink panics for one session's dead letters and records the
// others.
type panickySink struct {
	next    edge.DeadLetterSink
	session string
}

func (s *panickySink) DeadLetter(dl edge.DeadLetter) {
	if dl.Session == s.session {
		panic("boom in the sink")
	}
	s.next.DeadLetter(dl)
}

// bombReceipt panics when told a push was written, and hands its deaths
// (and, as reason "moved", anything else) to sink.
type bombReceipt struct{ sink edge.DeadLetterSink }

func (bombReceipt) Written(*edge.Envelope)    { panic("boom in Written") }
func (r bombReceipt) Dead(dl edge.DeadLetter) { r.sink.DeadLetter(dl) }
func (r bombReceipt) Moved(session string, e *edge.Envelope) {
	r.sink.DeadLetter(edge.DeadLetter{Envelope: *e, Session: session, Reason: "moved"})
}

// tryPushes queues pushes p<from>… p<to-1> with receipt r (nil: none) and
// returns the ids the connection took.
func tryPushes(t *testing.T, h *edge.Conn, from, to int, expires time.Time, r edge.Receipt) []string {
	t.Helper()
	var taken []string
	for i := from; i < to; i++ {
		id := fmt.Sprint("p", i)
		e := pushOf(id, "x")
		e.Expires, e.Receipt = expires, r
		switch err := h.TryPush(push.High, e); {
		case err == nil:
			taken = append(taken, id)
		case !errors.Is(err, edge.ErrClosed):
			t.Fatalf("push %s: %v", id, err)
		}
	}
	return taken
}

// drain receives pushes until the connection ends, and checks it ended
// with reason.
func drain(t *testing.T, c *client.Conn, reason wire.CloseReason) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var ids []string
	for {
		f, err := c.Recv(ctx)
		if err == nil {
			ids = append(ids, f.ID)
			continue
		}
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Reason != reason {
			t.Fatalf("the connection ended with %v; want close reason %s", err, reason)
		}
		return ids
	}
}

func waitDone(t *testing.T, h *edge.Conn) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(testTimeout):
		t.Fatal("the connection never ended")
	}
}

// deadIDs are the ids of session's dead letters, which must all have
// reason.
func deadIDs(t *testing.T, dls []edge.DeadLetter, session string, reason push.Reason) []string {
	t.Helper()
	var ids []string
	for _, dl := range dls {
		if dl.Session != session {
			continue
		}
		if dl.Reason != reason {
			t.Errorf("push %s dead-lettered %s; want %s", dl.Frame.ID, dl.Reason, reason)
		}
		ids = append(ids, dl.Frame.ID)
	}
	return ids
}

// lostIDs are the push ids logged as lost.
func lostIDs(t *testing.T, logs *observer.ObservedLogs) []string {
	t.Helper()
	var ids []string
	for _, e := range logs.FilterMessage("pushes lost: the dead-letter sink panicked").All() {
		pushes, _ := e.ContextMap()["push_ids"].([]any)
		for _, id := range pushes {
			ids = append(ids, id.(string))
		}
	}
	return ids
}

// wantAccounted checks that every push queued was received or settled
// otherwise, exactly once.
func wantAccounted(t *testing.T, queued, received, settled []string) {
	t.Helper()
	got := slices.Concat(received, settled)
	slices.Sort(got)
	want := slices.Clone(queued)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("received %q and settled %q; want each of %q once", received, settled, queued)
	}
}

// stillServes checks the bystander session still gets its pushes.
func stillServes(t *testing.T, n *node, bystander *client.Conn) {
	t.Helper()
	if err := n.handle(t, "ok").TryPush(push.High, pushOf("after", "all that")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, bystander); f.ID != "after" {
		t.Fatalf("bystander got %q; want push after", f.ID)
	}
}

func wantPanicLogged(t *testing.T, logs *observer.ObservedLogs, where string) {
	t.Helper()
	entries := logs.FilterMessage("panic contained on a connection goroutine").All()
	if len(entries) != 1 {
		t.Fatalf("%d panics logged; want 1", len(entries))
	}
	m := entries[0].ContextMap()
	if stack, _ := m["stack"].(string); m["goroutine"] != where || !strings.Contains(stack, "writer_panic_test.go") {
		t.Fatalf("panic logged as %v; want goroutine %s and the stack through the panicking code", m, where)
	}
}

// A sink that panics while a connection is set up (here dead-lettering
// the pushes a refused connection took over from the one it replaced)
// ends that connection like any contained panic: the rest are counted
// lost, both connections end, and the node still shuts down.
func TestSinkPanicWhileSettingUpAConnection(t *testing.T) {
	connects := 0
	refused := make(chan struct{}) // closed when the refused connection has ended
	o := edge.Options{Sink: &panickySink{next: newRecorder(), session: "bomb"}, Hooks: edge.Hooks{
		OnConnect: func(c *edge.Conn) error {
			if connects++; connects == 1 {
				return nil
			}
			go func() {
				<-c.Done()
				close(refused)
			}()
			return errors.New("refused")
		},
	}}
	reg, logs := observeErrors(t, &o)
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1 // one push goes out; the rest wait
	n := startNode(t, cfg, o)
	first := dial(t, n.tcp, "bomb", client.Options{})
	queued := tryPushes(t, n.handle(t, "bomb"), 0, 4, time.Time{}, nil)
	if f := recv(t, first); f.ID != "p0" {
		t.Fatalf("got %s; want p0", f.ID)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := client.Dial(ctx, n.tcp, client.Options{Session: "bomb"}); err == nil {
		t.Fatal("the refused connection was welcomed")
	}
	if got := drain(t, first, wire.CloseReplaced); len(got) > 0 {
		t.Fatalf("the replaced connection got %q after p0", got)
	}
	select {
	case <-refused:
	case <-time.After(testTimeout):
		n.served = nil // Shutdown would wait for the stranded connection for ever
		t.Fatal("the refused connection never ended")
	}
	wantAccounted(t, queued, []string{"p0"}, lostIDs(t, logs))
	if got := counter(t, reg, "pushfabric_connection_panics_total", "goroutine", edge.PanicHandshake); got != 1 {
		t.Errorf("panics on handshake goroutines: %v; want 1", got)
	}
}
