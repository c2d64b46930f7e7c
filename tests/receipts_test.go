package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// pushOutcomes is what the producer was told of each push: received, dead
// <reason>, or the error's text.
type pushOutcomes struct {
	mu sync.Mutex
	by map[string]string // guarded by mu: push id → outcome
}

func (o *pushOutcomes) set(id, outcome string) {
	o.mu.Lock()
	o.by[id] = outcome
	o.mu.Unlock()
}

// Issue 15's accounting under client faults. 1,000 Push-Ack: received
// pushes go to ten sessions on two edges sharing one NATS. On A, mid-stream:
// two clients vanish without A noticing and come back on B (a Session:
// A learns of it from B's takeover and hands their pushes over), two are
// killed (A sees their sockets close) and come back on B, two are killed
// for good; four stay on B and never confirm (a 3 s receipt timeout).
// Every push ends confirmed exactly once by the application, with the
// producer told received, or dead-lettered unconfirmed, with the producer
// told dead unconfirmed; nothing else, and the counts agree.
func TestReceiptsUnderClientFaults(t *testing.T) {
	s := natstest.Server(t)
	cfgA, cfgB := edgeConfig(t, s, "A"), edgeConfig(t, s, "B")
	cfgA.Edge.Rate, cfgA.Edge.Burst = 100, 1 // pushes wait in A's queues when the clients die
	cfgA.Edge.ReceiptTimeout, cfgB.Edge.ReceiptTimeout = 3*time.Second, 3*time.Second
	a, b := startEdge(t, cfgA), startEdge(t, cfgB)
	roamProxy, goneProxy := startProxy(t, a.Addr("tcp").String()), startProxy(t, a.Addr("tcp").String())
	vanish := startVanishProxy(t, a.Addr("tcp").String())
	nc := natstest.Connect(t, s)
	prod := newProducer(t, nc, "receipts")

	apps := &ledger{seen: map[string]int{}} // what each application took (and so confirmed), by push id
	var sessions []string
	for i := range 2 {
		sessions = append(sessions, roamer(t, fmt.Sprintf("vanished-%d", i), "tcp://"+vanish.ln.Addr().String(), b.tcp(), apps))
		sessions = append(sessions, roamer(t, fmt.Sprintf("killed-%d", i), "tcp://"+roamProxy.ln.Addr().String(), b.tcp(), apps))
	}
	for i := range 2 {
		name := fmt.Sprintf("gone-%d", i)
		dial(t, "tcp://"+goneProxy.ln.Addr().String(), name, client.Options{OnPush: apps.onPush})
		sessions = append(sessions, name)
	}
	silent := &ledger{seen: map[string]int{}}
	for i := range 4 {
		name := fmt.Sprintf("silent-%d", i)
		dial(t, b.tcp(), name, client.Options{OnPush: silent.onPush, ManualReceipts: true})
		sessions = append(sessions, name)
	}
	waitFor(t, "every session on its node", func() bool { return a.Server.Stats().Sessions == 6 && b.Server.Stats().Sessions == 4 })

	told := &pushOutcomes{by: map[string]string{}}
	var pushing sync.WaitGroup
	for _, session := range sessions {
		for i := range 100 {
			id := fmt.Sprintf("%s-%03d", session, i)
			pushing.Go(func() { told.set(id, pushReceived(prod, session, id)) })
		}
	}
	waitFor(t, "A to hold its 600 pushes", func() bool { return sum(a.Server.Stats().Received) == 600 })
	waitFor(t, "the clients on A to take some", func() bool { return a.Server.Stats().Confirmed >= 60 })
	vanish.vanish() // these clients' sockets close, A's stay open: A hears of B's takeover
	roamProxy.cut() // these are killed, and A's sockets close too; they come back on B,
	goneProxy.cut() // these never do
	pushing.Wait()

	count := map[string]int{}
	dead := map[string]bool{}
	for id, outcome := range told.by {
		count[outcome]++
		switch outcome {
		case protocol.StatusReceived:
			if n := apps.count(id); n != 1 {
				t.Errorf("push %s acked received, taken %d times by its application; want once", id, n)
			}
		case "dead " + string(push.ReasonUnconfirmed):
			dead[id] = true
		default:
			t.Errorf("push %s: the producer was told %q; want received or dead unconfirmed", id, outcome)
		}
	}
	waitFor(t, "a dead letter for every push acked dead", func() bool { return len(deadLetters(t, s)) >= len(dead) })
	letters := map[string]int{}
	for _, dl := range deadLetters(t, s) {
		id := dl.Header.Get(protocol.HeaderID)
		letters[id]++
		if r := dl.Header.Get(protocol.HeaderReason); r != string(push.ReasonUnconfirmed) || !dead[id] {
			t.Errorf("dead letter of %s: reason %s, the producer told %q; want unconfirmed, told dead", id, r, told.by[id])
		}
	}
	for id := range dead {
		if letters[id] != 1 {
			t.Errorf("push %s acked dead unconfirmed has %d dead letters; want 1", id, letters[id])
		}
	}
	confirmed := a.Server.Stats().Confirmed + b.Server.Stats().Confirmed
	shown := 0
	for id, n := range apps.seen {
		if n != 1 {
			t.Errorf("push %s taken %d times by its application; want at most once", id, n)
		}
		shown++
	}
	if got := uint64(count[protocol.StatusReceived]); confirmed != got {
		t.Errorf("the edges confirmed %d pushes; the producer was told received %d times", confirmed, got)
	}
	t.Logf("1000 pushes: %d received (each taken once by its application), %d dead unconfirmed (%d dead letters); "+
		"applications took %d pushes (the silent ones saw %d and confirmed none); edges confirmed %d; unconfirmed A %v, B %v; hand-overs A %v; by session %v",
		count[protocol.StatusReceived], len(dead), len(letters), shown, len(silent.seen), confirmed,
		a.Server.Stats().Unconfirmed, b.Server.Stats().Unconfirmed, a.Dispatcher.Stats().Handovers, bySession(told))
	if len(told.by) != 1000 || count[protocol.StatusReceived]+len(dead) != 1000 {
		t.Errorf("%d pushes told, %d received + %d dead; want all 1000 one or the other", len(told.by), count[protocol.StatusReceived], len(dead))
	}
}

// roamer connects a Session for name at first, then, after it is cut, at
// next; its application records what it takes in apps.
func roamer(t *testing.T, name, first, next string, apps *ledger) string {
	t.Helper()
	r := client.ReconnectOptions{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
		Addr: func(attempt int) string {
			if attempt == 0 {
				return first
			}
			return next
		}}
	s, err := client.Connect(timeout(t), first, client.Options{Token: mint(t, name), OnPush: apps.onPush}, r)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return name
}

// pushReceived pushes id and waits for the client application to confirm
// it; it returns what the producer was told.
func pushReceived(p *producer.Producer, session, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := p.Push(ctx, session, push.High, []byte(id), producer.WithID(id), producer.WithAck(protocol.AckReceived))
	switch {
	case errors.Is(err, producer.ErrUnacknowledged):
		return "unacknowledged"
	case err != nil:
		return err.Error()
	case ack.Status == protocol.StatusDead:
		return "dead " + ack.Reason
	}
	return ack.Status
}

func sum(n [2]uint64) uint64 { return n[0] + n[1] }

// bySession counts, per session, the pushes the producer was told received.
func bySession(told *pushOutcomes) map[string]int {
	n := map[string]int{}
	for id, outcome := range told.by {
		if outcome == protocol.StatusReceived {
			n[id[:len(id)-4]]++
		}
	}
	return n
}

// vanishProxy forwards a loopback port to target; vanish closes the
// clients' ends of every connection and leaves the target's open, as a
// client that disappears without a word (a killed phone, a dropped
// network) leaves the edge with a socket that looks alive.
type vanishProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	clients []net.Conn // guarded by mu
	servers []net.Conn // guarded by mu
}

func startVanishProxy(t *testing.T, target string) *vanishProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &vanishProxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range append(p.clients, p.servers...) {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *vanishProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.clients, p.servers = append(p.clients, c), append(p.servers, s)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(s, c) }) // ends when the client's end closes; s stays open
		p.wg.Go(func() { _, _ = io.Copy(c, s) })
	}
}

// vanish closes the clients' ends only.
func (p *vanishProxy) vanish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		_ = c.Close()
	}
	p.clients = nil
}

// pushctl push --ack received waits for the client application: received
// (exit 0) from a client that confirms, dead unconfirmed (exit 1) from one
// that never does, and, with a --timeout shorter than the edge's receipt
// timeout, an unacknowledged push (exit 1, saying so).
func TestPushctlAckReceived(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.ReceiptTimeout = time.Second
	a := startEdge(t, cfg)
	dial(t, a.tcp(), "alice", client.Options{OnPush: func(client.Frame) {}})
	dial(t, a.ws(), "bob", client.Options{OnPush: func(client.Frame) {}, ManualReceipts: true})
	waitFor(t, "both sessions", func() bool { return a.Server.Stats().Sessions == 2 })
	push := func(args ...string) cliRun {
		return runTool(t, nil, "pushctl", append([]string{"push", "--ack", "received", "--nats", s.ClientURL()}, args...)...)
	}
	if r := push("--id", "a-1", "alice", "hi"); r.code != 0 || !strings.Contains(r.stdout, "received: the client confirmed it, on node A (push a-1)") {
		t.Errorf("push to a client that confirms: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := push("--id", "b-1", "bob", "hi"); r.code != 1 || !strings.Contains(r.stdout, "dead: unconfirmed (push b-1") {
		t.Errorf("push to a client that never confirms: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := push("--timeout", "300ms", "--id", "b-2", "bob", "hi"); r.code != 1 || !strings.Contains(r.stderr, "unacknowledged") {
		t.Errorf("push with a timeout shorter than the receipt timeout: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	help := strings.Join(strings.Fields(runTool(t, nil, "pushctl", "push", "--help").stdout), " ")
	if !strings.Contains(help, "received (the client application confirmed it") {
		t.Errorf("pushctl push --help does not explain --ack received:\n%s", help)
	}
}

// A receipt-push whose client is killed before confirming it, with no
// node to take it, is parked as an unconfirmed dead letter; with
// --redeliver-offline the session's next connection gets it again, asking
// for a receipt, and the letter goes once the client confirms it, not
// before.
func TestUnconfirmedIsParkedAndRedelivered(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Bus.RedeliverOffline = true
	a := startEdge(t, cfg)
	proxy := startProxy(t, a.Addr("tcp").String())
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")
	store := openStore(t, s)

	first := dial(t, "tcp://"+proxy.ln.Addr().String(), "parked", client.Options{ManualReceipts: true})
	told := make(chan string, 1)
	go func() { told <- pushReceived(p, "parked", "p-1") }()
	if f := recv(t, first); f.ID != "p-1" || !f.WantsReceipt {
		t.Fatalf("got %s (wants a receipt: %v); want p-1, asking for one", f.ID, f.WantsReceipt)
	}
	proxy.cut() // the client dies before confirming it
	if got := <-told; got != "dead "+string(push.ReasonUnconfirmed) {
		t.Fatalf("the producer was told %q; want dead unconfirmed", got)
	}
	waitFor(t, "the unconfirmed dead letter", func() bool {
		l, _ := store.List(timeout(t), dlq.Filter{Reason: string(push.ReasonUnconfirmed)})
		return len(l) == 1
	})

	again := dial(t, a.tcp(), "parked", client.Options{ManualReceipts: true})
	if f := recv(t, again); f.ID != "p-1" || !f.WantsReceipt {
		t.Fatalf("redelivered %s (wants a receipt: %v); want p-1, asking for one", f.ID, f.WantsReceipt)
	}
	if l, _ := store.List(timeout(t), dlq.Filter{}); len(l) != 1 {
		t.Fatalf("%d dead letters after the redelivery was written; want it kept until confirmed", len(l))
	}
	if err := again.Confirm("p-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter deleted once confirmed", func() bool {
		l, _ := store.List(timeout(t), dlq.Filter{})
		return len(l) == 0
	})
}
