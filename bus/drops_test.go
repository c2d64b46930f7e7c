package bus_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/push"
)

// Messages NATS drops because a session's subscription delivers into a
// full channel are counted one by one, not once per episode, and logged
// with the session: 10 fit in the channel no one reads, the other 90 are
// dropped, in two episodes (the channel is emptied in between).
func TestDroppedMessagesAreCountedBySession(t *testing.T) {
	s := startServer(t, &server.Options{})
	c, logs := connectLogged(t, s.ClientURL(), zap.InfoLevel)
	ch := make(chan *nats.Msg, 10)
	sub, err := c.NC.ChanSubscribe("push.alice.*", ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	producer, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	publish := func(n int) {
		t.Helper()
		for range n {
			if err := producer.Publish("push.alice.high", []byte("hi")); err != nil {
				t.Fatal(err)
			}
		}
		if err := producer.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	publish(50) // 10 delivered, 40 dropped
	waitDropped(t, c, 40)
	for len(ch) > 0 {
		<-ch
	}
	publish(60) // 10 delivered, 50 dropped
	waitDropped(t, c, 90)

	var logged uint64
	for _, e := range logs.FilterMessage("pushes dropped by nats").All() {
		f := e.ContextMap()
		logged += uint64(f["count"].(int64))
		if got, _ := f["sessions"].([]any); len(got) != 1 || !strings.HasPrefix(got[0].(string), "alice ") {
			t.Errorf("logged sessions %v; want alice and a count", f["sessions"])
		}
	}
	if logged != 90 {
		t.Errorf("logged %d dropped; want 90", logged)
	}
}

// connectLogged connects a node to url, keeping what it logs at level and
// above; the connection is closed when the test ends.
func connectLogged(t *testing.T, url string, level zapcore.Level) (*bus.Conn, *observer.ObservedLogs) {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.URLs = []string{url}
	core, logs := observer.New(level)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, push.DefaultIdentity(), cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c, logs
}

func waitDropped(t *testing.T, c *bus.Conn, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.Stats().DroppedMessages != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages counted dropped; want %d (stats %+v)", c.Stats().DroppedMessages, want, c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A server that closes the node's connection because the node read too
// slowly says nothing to the node, which sees a disconnection; the node
// asks the server why once it is back, and counts and logs a slow
// consumer. Here a proxy stops passing on what the server sends, the
// server gives up on the connection (over its max_pending), and the node
// reconnects through the proxy. (The node's user is in a named account: a
// server keeps no record of its global account's closed connections for
// the account to see.)
func TestServerSlowConsumerIsCounted(t *testing.T) {
	acc := server.NewAccount("PUSH")
	s := startServer(t, &server.Options{MaxPending: 1 << 20, Accounts: []*server.Account{acc},
		Users: []*server.User{{Username: "edge", Password: "pw", Account: acc}}})
	p := startHeldProxy(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	c, logs := connectLogged(t, "nats://edge:pw@"+p.ln.Addr().String(), zap.DebugLevel)
	sub, err := c.NC.Subscribe("push.alice.*", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	producer, err := nats.Connect(s.ClientURL(), nats.UserInfo("edge", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	close(p.hold)
	payload := make([]byte, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	for s.NumSlowConsumersClients() == 0 {
		for range 64 {
			if err := producer.Publish("push.alice.high", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := producer.Flush(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not close the held connection as a slow consumer")
		}
	}
	p.dropHeld()
	for c.Stats().ServerSlowConsumers != 1 {
		if time.Now().After(deadline) {
			for _, e := range logs.All() {
				t.Log(e.Message, e.ContextMap())
			}
			t.Fatalf("server slow consumers: %+v; want 1", c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	e := logs.FilterMessage("nats server closed the connection: slow consumer").All()
	if len(e) != 1 || e[0].ContextMap()["reason"] != "Slow Consumer (Pending Bytes)" {
		t.Errorf("logged %v; want one slow consumer, pending bytes", e)
	}
}

// heldProxy forwards a loopback port to a NATS server. Once hold is
// closed, what the server sends on the first connection is no longer
// read; dropHeld closes that connection. Later connections pass freely.
type heldProxy struct {
	ln       net.Listener
	hold     chan struct{} // closed by the test
	drop     chan struct{} // closed by dropHeld
	dropOnce sync.Once
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn // guarded by mu: both ends of every connection, the held one's first
}

func startHeldProxy(t *testing.T, target string) *heldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &heldProxy{ln: ln, hold: make(chan struct{}), drop: make(chan struct{})}
	p.wg.Go(func() { p.accept(target) })
	t.Cleanup(func() {
		ln.Close()
		p.dropHeld()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *heldProxy) accept(target string) {
	for first := true; ; first = false {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		hold := p.hold
		if !first {
			hold = nil
		}
		p.wg.Go(func() { p.pipe(s, c, nil) })
		p.wg.Go(func() { p.pipe(c, s, hold) })
	}
}

// pipe copies src to dst; once hold is closed it reads no more and waits
// for dropHeld.
func (p *heldProxy) pipe(dst, src net.Conn, hold chan struct{}) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-hold: // a nil hold is never ready
			<-p.drop
			return
		default:
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// dropHeld closes the held connection.
func (p *heldProxy) dropHeld() {
	p.dropOnce.Do(func() {
		p.mu.Lock()
		if len(p.conns) >= 2 {
			p.conns[0].Close()
			p.conns[1].Close()
		}
		p.mu.Unlock()
		close(p.drop)
	})
}
