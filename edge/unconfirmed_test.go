package edge

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// confirmLog records, in order, what the edge tells the receipts of a
// test's receipt-pushes: "written <id>", "confirmed <id>", "dead <id>
// <reason>", "moved <id>".
type confirmLog struct {
	mu   sync.Mutex
	told []string
}

func (l *confirmLog) add(s string) {
	l.mu.Lock()
	l.told = append(l.told, s)
	l.mu.Unlock()
}

func (l *confirmLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.told)
}

// push is a receipt-push with id whose receipt tells l.
func (l *confirmLog) push(id string) Envelope {
	return Envelope{Frame: Frame{ID: id, WantsReceipt: true}, Receipt: confirmReceipt{l}}
}

type confirmReceipt struct{ l *confirmLog }

func (r confirmReceipt) Written(e *Envelope)         { r.l.add("written " + e.Frame.ID) }
func (r confirmReceipt) Confirmed(e *Envelope)       { r.l.add("confirmed " + e.Frame.ID) }
func (r confirmReceipt) Moved(_ string, e *Envelope) { r.l.add("moved " + e.Frame.ID) }
func (r confirmReceipt) Dead(dl DeadLetter)          { r.l.add("dead " + dl.Frame.ID + " " + string(dl.Reason)) }

// confirm sends a receipt frame for ids.
func (pc *pipeClient) confirm(t *testing.T, ids ...string) {
	t.Helper()
	payload, err := wire.AppendReceipt(nil, ids...)
	if err != nil {
		t.Fatal(err)
	}
	pc.sendFrame(t, wire.Frame{Type: wire.TypeReceipt, Payload: payload})
}

func (pc *pipeClient) sendFrame(t *testing.T, f wire.Frame) {
	t.Helper()
	b, err := wire.AppendTCP(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// deadLetters is a sink that keeps what it is given.
type deadLetters struct {
	mu  sync.Mutex
	all []DeadLetter
}

func (d *deadLetters) DeadLetter(dl DeadLetter) {
	d.mu.Lock()
	d.all = append(d.all, dl)
	d.mu.Unlock()
}

func (d *deadLetters) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, dl := range d.all {
		out = append(out, dl.Frame.ID+" "+string(dl.Reason))
	}
	return out
}

func pushEach(t *testing.T, c *Conn, p push.Priority, es ...Envelope) {
	t.Helper()
	for _, e := range es {
		if err := c.TryPush(p, e); err != nil {
			t.Fatalf("TryPush %s: %v", e.Frame.ID, err)
		}
	}
}

// A full window holds the next receipt-push back at the head of its queue,
// and what is behind it with it; a receipt frame confirms the ids it
// holds (an unknown one and a repeat do nothing), which makes room.
func TestReceiptWindowBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l confirmLog
		cfg := DefaultConfig()
		cfg.ReceiptWindow, cfg.ReceiptTimeout = 2, 0
		srv := newTestServer(t, cfg, Options{})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		pushEach(t, c, push.High, l.push("r1"), l.push("r2"), l.push("r3"))
		pushEach(t, c, push.Low, Envelope{Frame: Frame{ID: "plain"}})
		synctest.Wait()
		got := pc.pushes()
		if ids(got) != "r1 r2" || !got[0].WantsReceipt {
			t.Fatalf("delivered %q (asking for a receipt: %v); want \"r1 r2\", asking", ids(got), len(got) > 0 && got[0].WantsReceipt)
		}
		if s := srv.Stats(); s.UnconfirmedNow != 2 {
			t.Fatalf("unconfirmed now %d; want 2", s.UnconfirmedNow)
		}
		pc.confirm(t, "r1", "unknown", "r1")
		synctest.Wait()
		if s := ids(pc.pushes()); s != "r1 r2 r3 plain" {
			t.Fatalf("delivered %q after the receipt; want \"r1 r2 r3 plain\"", s)
		}
		if got := pc.pushes(); got[3].WantsReceipt {
			t.Fatal("a plain push asks for a receipt")
		}
		want := []string{"written r1", "written r2", "confirmed r1", "written r3"}
		if got := l.all(); !slices.Equal(got, want) {
			t.Fatalf("receipts told %q; want %q", got, want)
		}
		if s := srv.Stats(); s.ReceiptFrames != 1 || s.Confirmed != 1 || s.UnconfirmedNow != 2 {
			t.Fatalf("receipt frames %d, confirmed %d, unconfirmed now %d; want 1, 1, 2", s.ReceiptFrames, s.Confirmed, s.UnconfirmedNow)
		}
	})
}

// A receipt-push not confirmed within the receipt timeout is dead-lettered
// unconfirmed (through its receipt, or the sink for one without); a late
// receipt for it is ignored.
func TestReceiptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l confirmLog
		var sink deadLetters
		cfg := DefaultConfig()
		cfg.ReceiptTimeout, cfg.PingInterval, cfg.IdleTimeout = time.Second, 0, 0
		srv := newTestServer(t, cfg, Options{Sink: &sink})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		pushEach(t, c, push.High, l.push("r1"), Envelope{Frame: Frame{ID: "local", WantsReceipt: true}})
		synctest.Wait()
		time.Sleep(500 * time.Millisecond)
		pushEach(t, c, push.High, l.push("r2"))
		time.Sleep(700 * time.Millisecond) // r1 and local are past the timeout, r2 is not
		synctest.Wait()
		if got, want := l.all(), []string{"written r1", "written r2", "dead r1 unconfirmed"}; !slices.Equal(got, want) {
			t.Fatalf("receipts told %q; want %q", got, want)
		}
		pc.confirm(t, "r1", "local", "r2")
		synctest.Wait()
		if got, want := l.all(), []string{"written r1", "written r2", "dead r1 unconfirmed", "confirmed r2"}; !slices.Equal(got, want) {
			t.Fatalf("receipts told %q; want %q", got, want)
		}
		if got, want := sink.list(), []string{"local unconfirmed"}; !slices.Equal(got, want) {
			t.Fatalf("the sink got %q; want %q", got, want)
		}
		s := srv.Stats()
		if s.Confirmed != 1 || s.Unconfirmed[UnconfirmedTimedOut] != 2 || s.UnconfirmedNow != 0 {
			t.Fatalf("confirmed %d, timed out %d, unconfirmed now %d; want 1, 2, 0", s.Confirmed, s.Unconfirmed[UnconfirmedTimedOut], s.UnconfirmedNow)
		}
	})
}

// However the connection ends, its receipt-pushes, written and unconfirmed
// or still queued, follow the session (Moved); a plain push behind them is
// dead-lettered as before, and one without a receipt as unconfirmed.
func TestUnconfirmedFollowTheSession(t *testing.T) {
	ends := map[string]struct {
		end   func(t *testing.T, c *Conn, pc *pipeClient)
		plain push.Reason
	}{
		"client gone": {func(t *testing.T, c *Conn, pc *pipeClient) { _ = pc.nc.Close() }, push.ReasonClosed},
		"shutdown":    {func(t *testing.T, c *Conn, pc *pipeClient) { c.Close(wire.CloseShutdown) }, push.ReasonShutdown},
		"idle":        {func(t *testing.T, c *Conn, pc *pipeClient) { time.Sleep(11 * time.Second) }, push.ReasonClosed},
		"protocol": {func(t *testing.T, c *Conn, pc *pipeClient) {
			pc.sendFrame(t, wire.Frame{Type: wire.TypeReceipt, Payload: []byte{5, 'a'}})
		}, push.ReasonClosed},
	}
	for name, tc := range ends {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var l confirmLog
				var sink deadLetters
				cfg := DefaultConfig()
				cfg.ReceiptWindow, cfg.PingInterval, cfg.IdleTimeout = 1, 0, 10*time.Second
				srv := newTestServer(t, cfg, Options{Sink: &sink})
				c, pc := attachPipe(t, srv, "s1", false)
				synctest.Wait()
				pushEach(t, c, push.High, l.push("r1"), l.push("r2"), Envelope{Frame: Frame{ID: "local", WantsReceipt: true}})
				pushEach(t, c, push.Low, Envelope{Frame: Frame{ID: "plain"}})
				synctest.Wait()
				tc.end(t, c, pc)
				<-c.Done()
				wantEndAccounting(t, &l, &sink, string(tc.plain))
				if s := srv.Stats(); s.Unconfirmed[UnconfirmedHandedOver] != 2 || s.Unconfirmed[UnconfirmedDeadLettered] != 1 || s.UnconfirmedNow != 0 {
					t.Fatalf("unconfirmed %v, now %d; want 2 handed over, 1 dead-lettered, 0 now", s.Unconfirmed, s.UnconfirmedNow)
				}
			})
		})
	}
}

// A newer connection of the session on this node takes the old one's
// receipt-pushes, unconfirmed and queued, and they are written (and
// confirmed) there; nothing is moved off the node.
func TestUnconfirmedGoToTheNewerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l confirmLog
		cfg := DefaultConfig()
		cfg.ReceiptWindow = 1
		srv := newTestServer(t, cfg, Options{})
		c, _ := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		pushEach(t, c, push.High, l.push("r1"), l.push("r2"))
		synctest.Wait()
		_, pc := attachPipe(t, srv, "s1", false)
		<-c.Done()
		synctest.Wait()
		if s := ids(pc.pushes()); s != "r2" {
			t.Fatalf("the newer connection got %q; want r2 (r1 waits for room)", s)
		}
		pc.confirm(t, "r2")
		synctest.Wait()
		pc.confirm(t, "r1")
		synctest.Wait()
		if s := ids(pc.pushes()); s != "r2 r1" {
			t.Fatalf("the newer connection got %q; want \"r2 r1\"", s)
		}
		want := []string{"written r1", "written r2", "confirmed r2", "written r1", "confirmed r1"}
		if got := l.all(); !slices.Equal(got, want) {
			t.Fatalf("receipts told %q; want %q", got, want)
		}
	})
}

// A receipt frame costs the edge no allocation per id: a frame of the
// largest size listing hundreds of thousands of short ids, unknown or
// not, is read in place, where it made a string of each (29 MB for one
// frame of 1 MiB, a 28-fold amplification any client could repeat).
func TestReceiptFrameReadInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l confirmLog
		srv := newTestServer(t, DefaultConfig(), Options{})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		pushEach(t, c, push.High, l.push("ab"))
		synctest.Wait()
		var payload []byte
		for len(payload)+3 <= wire.DefaultMaxFrameSize-64 {
			payload = append(payload, 2, 'a'+byte(len(payload)%26), 'b')
		}
		if allocs := testing.AllocsPerRun(3, func() { _ = c.onReceipt(payload) }); allocs > 16 {
			t.Errorf("%.0f allocations for a receipt frame of %d ids; want at most 16", allocs, len(payload)/3)
		}
		if got, want := l.all(), []string{"written ab", "confirmed ab"}; !slices.Equal(got, want) {
			t.Fatalf("receipts told %q; want %q", got, want)
		}
		_ = pc
	})
}

// A full window holds pushes back, not the answers to the client's
// requests: a response frame goes out while receipt-pushes wait for room.
func TestFullWindowLetsResponsesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l confirmLog
		cfg := DefaultConfig()
		cfg.ReceiptWindow, cfg.ReceiptTimeout = 1, 0
		echo := func(_ context.Context, req *Request) (Response, error) {
			return Reply(Frame{Payload: req.Payload}), nil
		}
		srv := newTestServer(t, cfg, Options{Handlers: map[string]Handler{"echo": echo}})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		pushEach(t, c, push.High, l.push("r1"), l.push("r2"))
		synctest.Wait()
		pc.sendFrame(t, wire.Frame{Type: wire.TypeRequest, ID: "q1", Name: "echo", Payload: []byte("hi")})
		synctest.Wait()
		if ids(pc.pushes()) != "r1" || pc.count(wire.TypeResponse) != 1 {
			t.Fatalf("pushes %q, responses %d; want r1 alone (r2 waits for room) and the response", ids(pc.pushes()), pc.count(wire.TypeResponse))
		}
		pc.confirm(t, "r1")
		synctest.Wait()
		if s := ids(pc.pushes()); s != "r1 r2" {
			t.Fatalf("after the receipt: %q; want r1 r2", s)
		}
	})
}

// wantEndAccounting checks what a connection's end did with the pushes
// r1 (written), r2 (queued), both asking for receipts, local (asking, but
// made in the process) and plain: r1 and r2 moved to follow the session,
// local dead-lettered unconfirmed, plain dead-lettered for the reason
// given.
func wantEndAccounting(t *testing.T, l *confirmLog, sink *deadLetters, plain string) {
	t.Helper()
	got := l.all()
	slices.Sort(got)
	if want := []string{"moved r1", "moved r2", "written r1"}; !slices.Equal(got, want) {
		t.Fatalf("receipts told %q; want %q", got, want)
	}
	dls := sink.list()
	slices.Sort(dls)
	if want := []string{"local unconfirmed", "plain " + plain}; !slices.Equal(dls, want) {
		t.Fatalf("the sink got %q; want %q", dls, want)
	}
}
