package edge_test

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// peer is a client written by hand over either transport: a goroutine
// reads every frame, counts the server's pings (WebSocket control pings, or
// protocol ping frames over TCP) and answers them only when told to, so a
// test controls exactly what the server hears.
type peer struct {
	nc     net.Conn
	ws     bool
	answer bool
	frames chan wire.Frame // every other frame, decoded; closed when the reader ends
	done   chan struct{}   // closed when the reader ends

	wmu sync.Mutex // serialises writes

	mu     sync.Mutex
	pings  int           // guarded by mu
	pinged chan struct{} // guarded by mu: closed and replaced on every ping
}

// dialPeer connects a development-mode peer for session over transport
// ("tcp" or "ws") and reads the welcome.
func dialPeer(t testing.TB, n *node, transport, session string, answer bool) *peer {
	t.Helper()
	p := &peer{ws: transport == "ws", answer: answer, frames: make(chan wire.Frame, 256),
		done: make(chan struct{}), pinged: make(chan struct{})}
	var br *bufio.Reader
	if p.ws {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		nc, wbr, _, err := ws.Dial(ctx, n.ws+"?session="+session)
		if err != nil {
			t.Fatal(err)
		}
		p.nc, br = nc, wbr
	} else {
		nc, err := net.Dial("tcp", n.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		p.nc = nc
	}
	if br == nil {
		br = bufio.NewReader(p.nc)
	}
	t.Cleanup(func() { _ = p.nc.Close(); <-p.done })
	if !p.ws {
		p.send(t, wire.Frame{Type: wire.TypeHello, ID: session})
	}
	go p.read(br)
	if f := p.next(t); f.Type != wire.TypeWelcome {
		t.Fatalf("first frame %v; want welcome", f.Type)
	}
	return p
}

func (p *peer) read(br *bufio.Reader) {
	defer close(p.done)
	defer close(p.frames)
	for {
		var body []byte
		var err error
		if p.ws {
			body, err = wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, p.onControl)
		} else {
			body, err = wire.ReadTCP(br, nil, wire.DefaultMaxFrameSize)
		}
		if err != nil {
			return
		}
		f, err := wire.Decode(body)
		if err != nil {
			return
		}
		if f.Type == wire.TypePing && !p.ws {
			pong, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypePong, Payload: f.Payload})
			p.gotPing(pong)
			continue
		}
		f.Payload = append([]byte(nil), f.Payload...)
		p.frames <- f
	}
}

func (p *peer) onControl(op byte, payload []byte) error {
	if op == wire.WSPing {
		mask := [4]byte{9, 8, 7, 6}
		p.gotPing(wire.AppendWSControl(nil, wire.WSPong, payload, &mask))
	}
	return nil
}

// gotPing counts a ping and, if the peer answers pings, writes pong.
func (p *peer) gotPing(pong []byte) {
	p.mu.Lock()
	p.pings++
	close(p.pinged)
	p.pinged = make(chan struct{})
	p.mu.Unlock()
	if p.answer {
		p.wmu.Lock()
		_, _ = p.nc.Write(pong)
		p.wmu.Unlock()
	}
}

func (p *peer) pingCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pings
}

// waitPings waits until the server has sent at least n pings; it fails if
// the connection ends first.
func (p *peer) waitPings(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		p.mu.Lock()
		got, ch := p.pings, p.pinged
		p.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-p.done:
			t.Fatalf("the connection ended after %d pings (%s); want it open for %d", p.pingCount(), p.closeFrame(), n)
		case <-timeout:
			t.Fatalf("%d pings; want %d", got, n)
		}
	}
}

// closeFrame describes the close frame among the frames not yet taken.
func (p *peer) closeFrame() string {
	for f := range p.frames {
		if f.Type == wire.TypeClose {
			return "close " + f.Name + ": " + string(f.Payload)
		}
	}
	return "no close frame"
}

// encode is f as this peer's transport carries it.
func (p *peer) encode(t testing.TB, f wire.Frame) []byte {
	t.Helper()
	var b []byte
	var err error
	if p.ws {
		b, err = wire.AppendWSMasked(nil, &f, [4]byte{1, 2, 3, 4})
	} else {
		b, err = wire.AppendTCP(nil, &f)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *peer) send(t testing.TB, f wire.Frame) { p.sendBytes(t, p.encode(t, f)) }

func (p *peer) sendBytes(t testing.TB, b []byte) {
	t.Helper()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := p.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// next returns the next frame that is not a ping.
func (p *peer) next(t testing.TB) wire.Frame {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			t.Fatal("the connection ended")
		}
		return f
	case <-time.After(testTimeout):
		t.Fatal("no frame")
	}
	return wire.Frame{}
}

func echo(_ context.Context, r *edge.Request) (edge.Response, error) {
	return edge.Reply(edge.Frame{Payload: r.Payload}), nil
}

// A frame that arrives in two parts, with pings going out in between, is
// read whole over both transports: the keepalive clock never cuts a frame.
func TestSlowFrameSurvivesPings(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.PingInterval, cfg.IdleTimeout = 100*time.Millisecond, time.Hour
	n := startNode(t, cfg, edge.Options{Handlers: map[string]edge.Handler{"echo": echo}})
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			p := dialPeer(t, n, transport, "slow-"+transport, false)
			b := p.encode(t, wire.Frame{Type: wire.TypeRequest, ID: "r1", Name: "echo", Payload: []byte("every byte of me")})
			for round := range 2 { // the second time, the connection is still in step
				seen := p.pingCount()
				p.sendBytes(t, b[:len(b)/2])
				p.waitPings(t, seen+2)
				p.sendBytes(t, b[len(b)/2:])
				if f := p.next(t); f.Type != wire.TypeResponse || f.ID != "r1" || string(f.Payload) != "every byte of me" {
					t.Fatalf("round %d: got %v %q %q; want the response to r1", round, f.Type, f.ID, f.Payload)
				}
				if f := p.next(t); f.Type != wire.TypeEnd || f.ID != "r1" {
					t.Fatalf("round %d: got %v %q; want the end of r1", round, f.Type, f.ID)
				}
			}
		})
	}
}

// keepaliveNode pings every 50 ms and closes a client not heard from for
// 2 s (room for a loaded machine to stall); closed gets "<session>
// <reason>" for every connection that ends.
func keepaliveNode(t *testing.T) (n *node, closed chan string) {
	cfg := edge.DefaultConfig()
	cfg.PingInterval, cfg.IdleTimeout = 50*time.Millisecond, 2*time.Second
	closed = make(chan string, 8)
	n = startNode(t, cfg, edge.Options{Hooks: edge.Hooks{OnClose: func(c *edge.Conn, r wire.CloseReason, _ error) {
		closed <- c.Session() + " " + string(r)
	}}})
	return n, closed
}

// Clients that only answer pings are never closed idle: the Go client
// over both transports, and a WebSocket client that sends nothing but
// control pongs. The clock is the raw client's pings: many idle timeouts'
// worth of them.
func TestPingAnsweringClientsStayConnected(t *testing.T) {
	n, closed := keepaliveNode(t)
	goWS := dial(t, n.ws, "go-ws", client.Options{})
	goTCP := dial(t, n.tcp, "go-tcp", client.Options{})
	raw := dialPeer(t, n, "ws", "raw-ws", true)
	raw.waitPings(t, 120) // at least 6 s: 3 idle timeouts
	select {
	case c := <-closed:
		t.Fatalf("closed: %s; want every client still connected", c)
	default:
	}
	for _, c := range []*client.Conn{goWS, goTCP} {
		if err := n.handle(t, c.Session()).TryPush(push.High, pushOf("still", "here")); err != nil {
			t.Fatal(err)
		}
		if f := recv(t, c); f.ID != "still" {
			t.Fatalf("%s got %q; want push still", c.Session(), f.ID)
		}
	}
	if err := n.handle(t, "raw-ws").TryPush(push.High, pushOf("still", "here")); err != nil {
		t.Fatal(err)
	}
	if f := raw.next(t); f.Type != wire.TypePush || f.ID != "still" {
		t.Fatalf("raw client got %v %q; want push still", f.Type, f.ID)
	}
}

// Clients receiving pushes the whole time, and sending nothing but pongs,
// are not closed idle either: a steady stream of writes neither stands in
// for the client's own bytes nor holds back the pings that bring them.
func TestPushLoadKeepsPingAnsweringClients(t *testing.T) {
	n, closed := keepaliveNode(t)
	goWS := dial(t, n.ws, "go-ws", client.Options{})
	raw := dialPeer(t, n, "ws", "raw-ws", true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	count := func(session string) {
		mu.Lock()
		got[session]++
		mu.Unlock()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for f := range raw.frames {
			if f.Type == wire.TypePush {
				count("raw-ws")
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			if _, err := goWS.Recv(context.Background()); err != nil {
				return
			}
			count("go-ws")
		}
	}()
	stop := make(chan struct{})
	pushed := make(chan int)
	go func() {
		sent := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pushed <- sent
				return
			case <-tick.C:
			}
			for _, s := range []string{"go-ws", "raw-ws"} {
				if h := n.srv.Registry().Get(s); h != nil && h.TryPush(push.High, pushOf("load", "x")) == nil {
					sent++
				}
			}
		}
	}()
	raw.waitPings(t, 120) // at least 6 s of pushes: 3 idle timeouts
	close(stop)
	sent := <-pushed
	select {
	case c := <-closed:
		t.Fatalf("closed under a push load: %s; want every client still connected", c)
	default:
	}
	_ = goWS.Close()
	_ = raw.nc.Close()
	wg.Wait()
	if got["go-ws"] < 100 || got["raw-ws"] < 100 {
		t.Fatalf("received %v of %d pushes; want a steady load on both", got, sent)
	}
}
