package edge_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// gate holds a connection's writer inside the BeforeSend hook on a frame
// with ID "gate", so a test can queue frames behind it and know they are all
// queued before the writer chooses among them.
type gate struct {
	mu      sync.Mutex
	entered map[string]chan struct{}
	release map[string]chan struct{}
}

func newGate() *gate {
	return &gate{entered: map[string]chan struct{}{}, release: map[string]chan struct{}{}}
}

func (g *gate) beforeSend(c *edge.Conn, f *edge.Frame) {
	if f.ID != "gate" {
		return
	}
	g.mu.Lock()
	entered, release := g.entered[c.Session()], g.release[c.Session()]
	g.mu.Unlock()
	entered <- struct{}{}
	<-release
}

// hold pushes the gate frame (low priority, so it starts no run of highs)
// and returns once the writer is held on it; the returned func lets it go.
func (g *gate) hold(t testing.TB, h *edge.Conn) func() {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.entered[h.Session()], g.release[h.Session()] = entered, release
	g.mu.Unlock()
	if err := h.TryPush(push.Low, pushOf("gate", "")); err != nil {
		t.Fatal(err)
	}
	<-entered
	return func() { close(release) }
}

func TestPriorityOrderEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		want string
	}{
		{"fairness 3", 3, "H1 H2 H3 L1 H4 H5 H6 L2"},
		{"strict", 0, "H1 H2 H3 H4 H5 H6 L1 L2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			cfg := edge.DefaultConfig()
			cfg.MaxHighBeforeLow = tc.max
			n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{BeforeSend: g.beforeSend}})
			for _, addr := range []string{n.tcp, n.ws} {
				c := dial(t, addr, "order-"+addr[:2], client.Options{})
				h := n.handle(t, c.Session())
				release := g.hold(t, h)
				for i := 1; i <= 6; i++ {
					mustTryPush(t, h, push.High, fmt.Sprintf("H%d", i))
				}
				mustTryPush(t, h, push.Low, "L1")
				mustTryPush(t, h, push.Low, "L2")
				release()
				var got []string
				for range 9 {
					got = append(got, recv(t, c).ID)
				}
				if s := strings.Join(got[1:], " "); got[0] != "gate" || s != tc.want {
					t.Fatalf("%s: order %q; want gate then %q", addr, got, tc.want)
				}
			}
		})
	}
}

func mustTryPush(t testing.TB, h edge.PushHandle, p push.Priority, id string) {
	t.Helper()
	if err := h.TryPush(p, pushOf(id, id)); err != nil {
		t.Fatalf("TryPush %s: %v", id, err)
	}
}

// TryPush under the dead-letter policy hands what does not fit to the sink.
func TestTryPushDeadLetterPolicy(t *testing.T) {
	g := newGate()
	cfg := edge.DefaultConfig()
	cfg.QueueLen, cfg.TryPush = 2, edge.TryPushDeadLetters
	n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{BeforeSend: g.beforeSend}})
	c := dial(t, n.tcp, "policy", client.Options{})
	h := n.handle(t, "policy")
	release := g.hold(t, h)
	mustTryPush(t, h, push.High, "1")
	mustTryPush(t, h, push.High, "2")
	err := h.TryPush(push.High, pushOf("3", ""))
	var dle *edge.DeadLetteredError
	if !errors.As(err, &dle) || dle.Reason != push.ReasonQueueFull || !errors.Is(err, edge.ErrQueueFull) {
		t.Fatalf("TryPush over the bound: %v; want dead-lettered queue_full", err)
	}
	err = h.TryPush(push.High, edge.Envelope{Frame: edge.Frame{ID: strings.Repeat("x", 300)}})
	if !errors.As(err, &dle) || dle.Reason != push.ReasonInvalid || !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("TryPush of an invalid frame: %v; want dead-lettered invalid", err)
	}
	dls := n.sink.waitLen(t, 2)
	if dls[0].Frame.ID != "3" || dls[0].Reason != push.ReasonQueueFull || dls[1].Reason != push.ReasonInvalid {
		t.Fatalf("dead letters %+v", dls)
	}
	release()
	for _, want := range []string{"gate", "1", "2"} {
		if f := recv(t, c); f.ID != want {
			t.Fatalf("got %s; want %s", f.ID, want)
		}
	}
	// A frame larger than the queue's byte bound can never fit.
	if err := h.Push(context.Background(), push.High, edge.Envelope{Frame: edge.Frame{Payload: make([]byte, cfg.QueueBytes+1)}}); !errors.Is(err, edge.ErrFrameTooLarge) {
		t.Fatalf("oversized Push: %v; want ErrFrameTooLarge", err)
	}
}

// A second connection for a session replaces the first, which is told
// why, and takes over what it had queued.
func TestTakeoverWithinNode(t *testing.T) {
	g := newGate()
	closed := make(chan wire.CloseReason, 1)
	cfg := edge.DefaultConfig()
	cfg.Flushers = 0 // the gate holds one writer; the new connection needs another
	n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{
		BeforeSend: g.beforeSend,
		OnClose:    func(_ *edge.Conn, r wire.CloseReason, _ error) { closed <- r },
	}})
	old := dial(t, n.ws, "s1", client.Options{})
	h := n.handle(t, "s1")
	release := g.hold(t, h)
	mustTryPush(t, h, push.High, "queued-1")
	mustTryPush(t, h, push.Low, "queued-2")
	fresh := dial(t, n.tcp, "s1", client.Options{})
	release()
	if r := <-closed; r != wire.CloseReplaced {
		t.Fatalf("old connection closed with %q; want replaced", r)
	}
	<-old.Done()
	var ce *client.CloseError
	if err := old.Err(); !errors.As(err, &ce) || ce.Reason != "replaced" {
		t.Fatalf("old client saw %v; want close reason replaced", old.Err())
	}
	for _, want := range []string{"queued-1", "queued-2"} {
		if f := recv(t, fresh); f.ID != want {
			t.Fatalf("new connection got %s; want %s", f.ID, want)
		}
	}
	if got := n.srv.Registry().Get("s1"); got == nil || got == h {
		t.Fatal("the registry does not hold the new connection")
	}
	// The gate frame was already the old writer's: the old client got it.
	if f := recv(t, old); f.ID != "gate" {
		t.Fatalf("old client got %s; want gate", f.ID)
	}
	if dls := n.sink.all(); len(dls) != 0 {
		t.Fatalf("dead letters %+v; want none: every push was handed over", dls)
	}
}

func TestAuthRejected(t *testing.T) {
	deny := edge.AuthFunc(func(ctx context.Context, cr edge.Credentials) (string, error) {
		if cr.Token != "good" {
			return "", errors.New("bad token")
		}
		return "authed", nil
	})
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: deny})
	for _, addr := range []string{n.tcp, n.ws} {
		_, err := client.Dial(context.Background(), addr, client.Options{Token: "bad"})
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Reason != "auth" || ce.Message != "bad token" {
			t.Fatalf("%s: %v; want close reason auth: bad token", addr, err)
		}
		c := dial(t, addr, "", client.Options{Token: "good"})
		if c.Session() != "authed" {
			t.Fatalf("session %q; want authed", c.Session())
		}
		h := n.handle(t, "authed")
		c.Close()
		<-h.Done()
	}
	if n.srv.Len() != 0 {
		t.Fatalf("%d connections after rejections and closes", n.srv.Len())
	}
}

func TestDevAuthRejectsBadSession(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	for _, s := range []string{"", "has space", "dot.ted", strings.Repeat("a", 129)} {
		_, err := client.Dial(context.Background(), n.tcp, client.Options{Session: s})
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Reason != "auth" {
			t.Fatalf("session %q: %v; want close reason auth", s, err)
		}
	}
}

// An oversized TCP frame cannot be skipped: the connection is closed with
// reason protocol.
func TestOversizedFrameClosesWithProtocol(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxFrameSize = 1024
	n := startNode(t, cfg, edge.Options{})
	raw := rawTCP(t, n, "big")
	raw.sendBytes(t, []byte{0, 0, 0x10, 0}) // 4096 bytes announced
	f := raw.next(t)
	if f.Type != wire.TypeClose || f.Name != string(wire.CloseProtocol) {
		t.Fatalf("got %v %q; want close protocol", f.Type, f.Name)
	}

	// Over WebSocket, a message announcing more than the limit.
	nc, br, _, err := ws.Dial(context.Background(), n.ws+"?session=big-ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if br == nil {
		br = bufio.NewReader(nc)
	}
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	mask := [4]byte{1, 2, 3, 4}
	if _, err := nc.Write(wire.AppendWSHeader(nil, wire.WSBinary, 4096, &mask)); err != nil {
		t.Fatal(err)
	}
	var closeFrame, wsClose bool
	for !wsClose {
		msg, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, func(op byte, p []byte) error {
			if op == wire.WSClose {
				wsClose = binary.BigEndian.Uint16(p) == 1002 && string(p[2:]) == "protocol"
			}
			return nil
		})
		if err != nil {
			if wsClose { // the server's last frame; its half-close follows
				break
			}
			t.Fatalf("read: %v (close frame seen: %v)", err, closeFrame)
		}
		if f, _ := wire.Decode(msg); f.Type == wire.TypeClose && f.Name == "protocol" {
			closeFrame = true
		}
	}
	if !closeFrame {
		t.Fatal("WebSocket close 1002 came without the close frame")
	}
}

// A connect hook that fails refuses the client with close reason shutdown;
// a push's receipt hears it was written once it is in the socket.
func TestConnectAndWrittenHooks(t *testing.T) {
	rl := newReceiptLog()
	n := startNode(t, edge.DefaultConfig(), edge.Options{Hooks: edge.Hooks{
		OnConnect: func(c *edge.Conn) error {
			if c.Session() == "refused" {
				return errors.New("no subscription")
			}
			return nil
		},
	}})
	_, err := client.Dial(context.Background(), n.tcp, client.Options{Session: "refused"})
	if !isClose(err, "shutdown") {
		t.Fatalf("refused client: %v; want close reason shutdown", err)
	}
	c := dial(t, n.ws, "welcome", client.Options{})
	if err := n.handle(t, "welcome").TryPush(push.Low, rl.push("w1")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, c); f.ID != "w1" {
		t.Fatalf("got %s", f.ID)
	}
	if told := rl.wait(t, 1); told[0] != "written w1" {
		t.Fatalf("the receipt was told %q; want written w1", told[0])
	}
}

// WebSocket clients that are not browsers send the token in an
// Authorization: Bearer header.
func TestBearerHeader(t *testing.T) {
	auth := edge.AuthFunc(func(_ context.Context, cr edge.Credentials) (string, error) {
		if cr.Token != "tok-123" || cr.Transport != "websocket" {
			return "", errors.New("bad token")
		}
		return "bearer", nil
	})
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: auth})
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer tok-123"}})}
	nc, br, _, err := d.Dial(context.Background(), n.ws)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if br == nil {
		br = bufio.NewReader(nc)
	}
	_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
	msg, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, func(byte, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if f, err := wire.Decode(msg); err != nil || f.Type != wire.TypeWelcome || f.ID != "bearer" {
		t.Fatalf("first frame %v %q, %v; want welcome for bearer", f.Type, f.ID, err)
	}
}
