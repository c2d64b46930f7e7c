package edge_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// testTimeout bounds every wait in these tests; reaching it is a failure.
const testTimeout = 20 * time.Second

// node is a running edge server with a TCP and a WebSocket listener.
type node struct {
	srv  *edge.Server
	sink *recorder
	tcp  string // tcp://addr
	ws   string // ws://addr/
	// the listeners' host:port
	tcpAddr, wsAddr string
	served          chan error
	// started receives a value when a test handler begins (see requestNode).
	started chan struct{}
}

func startNode(t testing.TB, cfg edge.Config, o edge.Options) *node {
	t.Helper()
	n := &node{sink: newRecorder(), served: make(chan error, 2)}
	o.Config = cfg
	if o.Auth == nil {
		o.Auth = edge.DevAuth{}
	}
	if o.Sink == nil {
		o.Sink = n.sink
	}
	srv, err := edge.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	tl, wl := listen(t), listen(t)
	n.tcpAddr, n.wsAddr = tl.Addr().String(), wl.Addr().String()
	n.tcp, n.ws = "tcp://"+n.tcpAddr, "ws://"+n.wsAddr+"/"
	go func() { n.served <- srv.ServeTCP(tl) }()
	go func() { n.served <- srv.ServeWebSocket(wl) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop shuts the node down (once) and checks both listeners ended cleanly.
func (n *node) stop(t testing.TB) {
	t.Helper()
	if n.served == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	for range 2 {
		if err := <-n.served; !errors.Is(err, edge.ErrServerClosed) {
			t.Errorf("serve returned %v; want ErrServerClosed", err)
		}
	}
	n.served = nil
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dial connects a development-mode client and closes it at cleanup.
func dial(t testing.TB, addr, session string, o client.Options) *client.Conn {
	t.Helper()
	o.Session = session
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, addr, o)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, session, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// handle returns the server side of a session.
func (n *node) handle(t testing.TB, session string) *edge.Conn {
	t.Helper()
	h := n.srv.Registry().Get(session)
	if h == nil {
		t.Fatalf("session %s is not registered", session)
	}
	return h
}

// recv reads the next push, failing the test after testTimeout.
func recv(t testing.TB, c *client.Conn) client.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	f, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return f
}

// recorder is a dead-letter sink that remembers everything.
type recorder struct {
	mu      sync.Mutex
	dls     []edge.DeadLetter
	changed chan struct{} // closed and replaced on every dead letter
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) DeadLetter(dl edge.DeadLetter) {
	r.mu.Lock()
	r.dls = append(r.dls, dl)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []edge.DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]edge.DeadLetter(nil), r.dls...)
}

// waitLen waits until at least n dead letters arrived.
func (r *recorder) waitLen(t testing.TB, n int) []edge.DeadLetter {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		r.mu.Lock()
		if len(r.dls) >= n {
			dls := append([]edge.DeadLetter(nil), r.dls...)
			r.mu.Unlock()
			return dls
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("got %d dead letters; want %d", len(r.all()), n)
		}
	}
}

// pushOf is a push made in the process: no expiry, no receipt.
func pushOf(id string, payload string) edge.Envelope {
	return edge.Envelope{Frame: edge.Frame{ID: id, Payload: []byte(payload)}}
}

// rawConn is a TCP client that speaks the protocol by hand, for sending
// what the client package never would.
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

// rawTCP connects as session and reads the welcome.
func rawTCP(t testing.TB, n *node, session string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", n.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	r := &rawConn{nc: nc, br: bufio.NewReader(nc)}
	r.send(t, wire.Frame{Type: wire.TypeHello, ID: session})
	if f := r.next(t); f.Type != wire.TypeWelcome {
		t.Fatalf("first frame %v; want welcome", f.Type)
	}
	return r
}

func (r *rawConn) send(t testing.TB, f wire.Frame) {
	t.Helper()
	b, err := wire.AppendTCP(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	r.sendBytes(t, b)
}

func (r *rawConn) sendBytes(t testing.TB, b []byte) {
	t.Helper()
	_ = r.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := r.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// next reads the next frame, skipping pings.
func (r *rawConn) next(t testing.TB) wire.Frame {
	t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		body, err := wire.ReadTCP(r.br, nil, wire.DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		f, err := wire.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != wire.TypePing {
			return f
		}
	}
}

// receiptLog records, in order, what the edge tells the receipts of a
// test's pushes: "written <id>", "dead <id> <reason>", "moved <id> to
// <session>".
type receiptLog struct {
	mu      sync.Mutex
	told    []string
	changed chan struct{} // closed and replaced on every entry
}

func newReceiptLog() *receiptLog { return &receiptLog{changed: make(chan struct{})} }

// push is a push with id whose receipt reports to l.
func (l *receiptLog) push(id string) edge.Envelope {
	return edge.Envelope{Frame: edge.Frame{ID: id, Payload: []byte(id)}, Receipt: loggedReceipt{l}}
}

func (l *receiptLog) add(entry string) {
	l.mu.Lock()
	l.told = append(l.told, entry)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *receiptLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.told...)
}

// wait waits until the receipts were told at least n things.
func (l *receiptLog) wait(t testing.TB, n int) []string {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		l.mu.Lock()
		told, ch := append([]string(nil), l.told...), l.changed
		l.mu.Unlock()
		if len(told) >= n {
			return told
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("receipts told %q; want %d entries", told, n)
		}
	}
}

// loggedReceipt is a receipt that tells its log.
type loggedReceipt struct{ l *receiptLog }

func (r loggedReceipt) Written(e *edge.Envelope) { r.l.add("written " + e.Frame.ID) }
func (r loggedReceipt) Dead(dl edge.DeadLetter) {
	r.l.add("dead " + dl.Frame.ID + " " + string(dl.Reason))
}
func (r loggedReceipt) Moved(session string, e *edge.Envelope) {
	r.l.add("moved " + e.Frame.ID + " to " + session)
}
