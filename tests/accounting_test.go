package tests

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// ledger records which client received which push.
type ledger struct {
	mu   sync.Mutex
	seen map[string]int
}

func (l *ledger) onPush(f client.Frame) {
	l.mu.Lock()
	l.seen[f.ID]++
	l.mu.Unlock()
}

func (l *ledger) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[id]
}

// Every failure path at once, across three edge nodes (one of them the real
// binary, stopped with SIGTERM): N acked pushes end up delivered or in
// PUSH_DLQ with the right reason and headers — each exactly once, but for
// the overlaps the docs name (a takeover hand-over, a batch cut by a write
// error).
func TestAccountingUnderEveryFailure(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	prod, err := producer.New(nc, producer.Options{Name: "accountant"})
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}

	// Node A: the binary, rate-limited so pushes are still queued at SIGTERM.
	a := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--node", "A",
		"--ws-listen", "", "--tcp-listen", "127.0.0.1:0", "--jwt-secret-file", writeSecret(t),
		"--rate", "20", "--burst", "1", "--drain-timeout", "1s")
	// Node B: rate-limited with short queues: overflow, a leaver, expiry, a mover.
	cfgB := edgeConfig(t, s, "B")
	cfgB.Edge.Rate, cfgB.Edge.Burst, cfgB.Edge.QueueLen = 20, 1, 16
	b := startEdge(t, cfgB)
	// Node C: a client that stops reading is cut off after 300 ms.
	cfgC := edgeConfig(t, s, "C")
	cfgC.Edge.WriteTimeout, cfgC.Edge.QueueLen = 300*time.Millisecond, 64
	c := startEdge(t, cfgC)

	got := &ledger{seen: map[string]int{}}
	reading := client.Options{OnPush: got.onPush, ReadBufferSize: 8 << 10}
	dial(t, b.tcp(), "busy", reading)
	// The leaver goes right after its third push, while the rate limit holds
	// the rest back (one every 50 ms): none is on the wire when it goes.
	var leaver *client.Conn
	leaving := make(chan struct{})
	leaverRead := 0
	leaver = dial(t, b.ws(), "leaver", client.Options{ReadBufferSize: 8 << 10, OnPush: func(f client.Frame) {
		got.onPush(f)
		if leaverRead++; leaverRead == 3 {
			close(leaving)
		}
	}})
	leaverGone := make(chan struct{})
	go func() {
		defer close(leaverGone)
		<-leaving
		leaver.Close() // with pushes queued: closed
	}()
	dial(t, b.tcp(), "late", reading)
	mover := dial(t, b.tcp(), "mover", reading)
	dial(t, "tcp://"+a.addr("tcp"), "doomed", reading)
	unstick := make(chan struct{})
	var unstickOnce sync.Once
	release := func() { unstickOnce.Do(func() { close(unstick) }) }
	dial(t, c.tcp(), "stuck", client.Options{ReadBufferSize: 8 << 10, OnPush: func(f client.Frame) {
		<-unstick // stops reading until the end of the test
		got.onPush(f)
	}})
	t.Cleanup(release) // before the client is closed: its reader must be free to end

	expect := map[string]string{} // push id → its session
	var mu sync.Mutex
	pushN := func(session string, n int, payload []byte, opts ...producer.Option) {
		for i := range n {
			id := fmt.Sprintf("%s-%d", session, i)
			mu.Lock()
			expect[id] = session
			mu.Unlock()
			ack, err := prod.Push(timeout(t), session, push.Low, payload, append(opts, producer.WithID(id))...)
			if err != nil {
				t.Errorf("push %s: %v", id, err)
				return
			}
			if ack.Status != protocol.StatusEnqueued && ack.Status != protocol.StatusDead {
				t.Errorf("push %s: ack %+v", id, ack)
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { pushN("busy", 100, []byte("x")) })                                                           // queue_full
	wg.Go(func() { pushN("late", 10, []byte("x"), producer.WithExpiry(time.Now().Add(150*time.Millisecond))) }) // expired
	wg.Go(func() { pushN("ghost", 10, []byte("x")) })                                                           // offline
	wg.Go(func() { pushN("stuck", 80, make([]byte, 128<<10)) })                                                 // queue_full, write_error; offline once it is cut off
	wg.Go(func() { pushN("doomed", 60, []byte("x")) })                                                          // shutdown
	wg.Go(func() { pushN("leaver", 12, []byte("x")) })                                                          // closed (B's queues hold 16)
	wg.Go(func() { pushN("mover", 12, []byte("x")) })                                                           // follows the session
	wg.Wait()
	if t.Failed() {
		return
	}

	<-leaving
	leaver.Close() // with pushes queued: closed
	<-leaverGone
	dial(t, c.ws(), "mover", reading) // takeover: B's queue follows to C
	<-mover.Done()
	took, err := a.stop(t) // SIGTERM: doomed's queue drains for 1 s, the rest is shutdown
	if err != nil || took > 10*time.Second {
		t.Fatalf("edge A exited with %v after %v", err, took)
	}
	waitFor(t, "the stuck client cut off", func() bool { return c.Server.Registry().Get("stuck") == nil })
	waitFor(t, "the mover gone from B", func() bool { return b.Server.Registry().Get("mover") == nil })
	release()
	if err := prod.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}
	waitForQuiet(t, b, c, got)
	b.shutdown(t)
	c.shutdown(t)

	reasons := map[string][]string{} // push id → dead-letter reasons
	for _, dl := range deadLetters(t, s) {
		id := dl.Header.Get(protocol.HeaderID)
		session := expect[id]
		if session == "" {
			t.Fatalf("dead letter for unknown push %q", id)
		}
		checkHeaders(t, dl, session)
		reasons[id] = append(reasons[id], dl.Header.Get(protocol.HeaderReason))
	}
	allowed := map[string][]string{
		"busy": {"queue_full"}, "late": {"expired"}, "ghost": {"offline"}, "stuck": {"queue_full", "write_error", "offline", "closed"},
		"doomed": {"shutdown"}, "leaver": {"closed", "offline"}, "mover": {},
	}
	byReason := map[string]int{}
	delivered := 0
	for id, session := range expect {
		d, dead := got.count(id), reasons[id]
		for _, r := range dead {
			if !contains(allowed[session], r) {
				t.Errorf("push %s (%s) dead-lettered as %s", id, session, r)
			}
			byReason[r]++
		}
		switch {
		case d+len(dead) == 1:
		case d == 2 && len(dead) == 0 && session == "mover": // delivered to both sides of the hand-over
		case d == 1 && len(dead) == 1 && dead[0] == "write_error": // its batch was cut
		default:
			t.Errorf("push %s (%s): delivered %d times, dead-lettered as %v", id, session, d, dead)
		}
		if d > 0 {
			delivered++
		}
	}
	for _, r := range []string{"queue_full", "expired", "offline", "write_error", "shutdown", "closed"} {
		if byReason[r] == 0 {
			t.Errorf("no dead letter as %s: the scenario did not force it", r)
		}
	}
	t.Logf("published %d: delivered %d, dead-lettered %v", len(expect), delivered, byReason)
}

// waitForQuiet waits until every push of the reading clients is delivered
// or dead-lettered, by watching the counts settle on the nodes that remain.
func waitForQuiet(t *testing.T, b, c *edgeNode, got *ledger) {
	t.Helper()
	last := -1
	stable := 0
	waitFor(t, "delivery to settle", func() bool {
		got.mu.Lock()
		n := 0
		for _, k := range got.seen {
			n += k
		}
		got.mu.Unlock()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		return stable > 100 // unchanged for half a second
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkHeaders checks a dead letter carries where it was going, who gave
// up, when, and its dedupe id.
func checkHeaders(t *testing.T, dl deadLetter, session string) {
	t.Helper()
	h := dl.Header
	id := h.Get(protocol.HeaderID)
	want := map[string]string{
		protocol.HeaderSession: session, protocol.HeaderPriority: "low",
		protocol.HeaderSubject: "push." + session + ".low", protocol.HeaderReplayCount: "0",
		"Nats-Msg-Id": h.Get(protocol.HeaderDeadID), // minted once per death
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("dead letter %s: %s = %q; want %q", id, k, h.Get(k), v)
		}
	}
	if h.Get(protocol.HeaderNode) == "" {
		t.Errorf("dead letter %s has no Push-Node", id)
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Get(protocol.HeaderDeadAt)); err != nil {
		t.Errorf("dead letter %s: Push-Dead-At: %v", id, err)
	}
	if dl.Subject != "dlq.push."+h.Get(protocol.HeaderReason)+"."+session+".low" {
		t.Errorf("dead letter %s on %s", id, dl.Subject)
	}
}
