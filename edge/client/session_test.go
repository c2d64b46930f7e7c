package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// testTimeout bounds every wait in these tests; reaching it is a failure.
const testTimeout = 20 * time.Second

// fast is a backoff short enough for tests that wait for reconnects.
var fast = client.ReconnectOptions{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}

// testNode is a running edge server with a TCP and a WebSocket listener.
type testNode struct {
	srv      *edge.Server
	tcp, ws  string // tcp://host:port, ws://host:port/
	accepted *tracker
	served   chan error
	once     sync.Once
}

// startEdge runs an edge named name on the given host:ports ("127.0.0.1:0"
// for any), with auth (nil: development mode).
func startEdge(t *testing.T, name, tcpAddr, wsAddr string, auth edge.Authenticator, handlers map[string]edge.Handler) *testNode {
	t.Helper()
	if auth == nil {
		auth = edge.DevAuth{}
	}
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: auth, Node: name, Handlers: handlers})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	tl, wl := listenOn(t, tcpAddr), listenOn(t, wsAddr)
	n := &testNode{srv: srv, accepted: &tracker{Listener: tl}, served: make(chan error, 2)}
	n.tcp, n.ws = "tcp://"+tl.Addr().String(), "ws://"+wl.Addr().String()+"/"
	go func() { n.served <- srv.ServeTCP(n.accepted) }()
	go func() { n.served <- srv.ServeWebSocket(wl) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// stop shuts the node down (once): its clients get close reason shutdown.
func (n *testNode) stop(t *testing.T) {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := n.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-n.served
		<-n.served
	})
}

// push queues a push for session on n, once the session is there.
func (n *testNode) push(t *testing.T, session, id string) {
	t.Helper()
	waitFor(t, "session "+session+" on the node", func() bool { return n.srv.Registry().Get(session) != nil })
	e := edge.Envelope{Frame: edge.Frame{ID: id, Payload: []byte("payload of " + id)}}
	if err := n.srv.Registry().Get(session).TryPush(push.High, e); err != nil {
		t.Fatalf("push %s: %v", id, err)
	}
}

// tracker is a listener that can cut every connection it accepted, as a
// dead node or a broken network does: the server's sockets close, with no
// close frame.
type tracker struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn // guarded by mu
}

func (l *tracker) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, nc)
		l.mu.Unlock()
	}
	return nc, err
}

func (l *tracker) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, nc := range l.conns {
		_ = nc.Close()
	}
	l.conns = nil
}

// states records what a session reports.
type states struct {
	mu  sync.Mutex
	all []client.State // guarded by mu
}

func (s *states) add(st client.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, st)
}

// connects returns the StateConnected states so far.
func (s *states) connects() []client.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []client.State
	for _, st := range s.all {
		if st.Kind == client.StateConnected {
			out = append(out, st)
		}
	}
	return out
}

// connect makes a Session for session (development mode) on addr, with
// the fast backoff and its states recorded, closed at cleanup.
func connect(t *testing.T, addr, session string, r client.ReconnectOptions) (*client.Session, *states) {
	t.Helper()
	rec := &states{}
	r.OnState = rec.add
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := client.Connect(ctx, addr, client.Options{Session: session}, r)
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, rec
}

// reconnected waits for the n-th connection (from 1) and returns its state.
func (s *states) reconnected(t *testing.T, n int) client.State {
	t.Helper()
	waitFor(t, fmt.Sprintf("connection %d", n), func() bool { return len(s.connects()) >= n })
	return s.connects()[n-1]
}

func recvID(t *testing.T, s *client.Session) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	f, err := s.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return f.ID
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stopped waits for s to stop and returns the close reason it stopped on.
func stopped(t *testing.T, s *client.Session) wire.CloseReason {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(testTimeout):
		t.Fatal("the session did not stop")
	}
	var ce *client.CloseError
	if !errors.As(s.Err(), &ce) {
		t.Fatalf("Err() = %v; want a *CloseError", s.Err())
	}
	return ce.Reason
}

// The node holding the session shuts down and another starts on the same
// address (a restart, or a load balancer's other node): the session comes
// back to it by itself, on both transports, and pushes flow again.
func TestSessionReconnectsAfterShutdown(t *testing.T) {
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			a := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
			addr := map[string]string{"tcp": a.tcp, "ws": a.ws}[transport]
			s, rec := connect(t, addr, "me", fast)
			if s.ID() != "me" || s.Node() != "A" {
				t.Fatalf("session %q on node %q; want me on A", s.ID(), s.Node())
			}
			a.push(t, "me", "p1")
			if got := recvID(t, s); got != "p1" {
				t.Fatalf("got %s; want p1", got)
			}
			a.stop(t)
			b := startEdge(t, "B", a.tcp[len("tcp://"):], a.ws[len("ws://"):len(a.ws)-1], nil, nil)
			st := rec.reconnected(t, 2)
			var ce *client.CloseError
			if st.Node != "B" || !errors.As(st.Err, &ce) || ce.Reason != wire.CloseShutdown {
				t.Fatalf("reconnected to %q after %v; want B after shutdown", st.Node, st.Err)
			}
			b.push(t, "me", "p2")
			if got := recvID(t, s); got != "p2" {
				t.Fatalf("got %s; want p2", got)
			}
		})
	}
}

// The server's side of the socket closes with no close frame (a node
// killed, a network cut): the session reconnects.
func TestSessionReconnectsAfterCut(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	s, rec := connect(t, n.tcp, "me", fast)
	rec.reconnected(t, 1)
	n.accepted.cut()
	st := rec.reconnected(t, 2)
	var ce *client.CloseError
	if st.Node != "A" || errors.As(st.Err, &ce) || st.Err == nil {
		t.Fatalf("reconnected to %q after %v; want A after a transport error", st.Node, st.Err)
	}
	n.push(t, "me", "after-cut")
	if got := recvID(t, s); got != "after-cut" {
		t.Fatalf("got %s; want after-cut", got)
	}
}

// A push that arrives once on each side of a reconnect, with the same id
// (a hand-over or a replay repeats it), reaches the application once.
func TestSessionDropsRepeatsAcrossReconnects(t *testing.T) {
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	s, rec := connect(t, n.tcp, "me", fast)
	n.push(t, "me", "x")
	if got := recvID(t, s); got != "x" {
		t.Fatalf("got %s; want x", got)
	}
	n.accepted.cut()
	rec.reconnected(t, 2)
	n.push(t, "me", "x")
	n.push(t, "me", "y")
	if got := recvID(t, s); got != "y" {
		t.Fatalf("got %s after the repeat of x; want y", got)
	}
	if s.Duplicates() != 1 {
		t.Fatalf("%d duplicates dropped; want 1", s.Duplicates())
	}
}

// After shutdown, idle, too_slow, overloaded and a reason this version
// does not know, the session reconnects, and says after what.
func TestSessionReconnectsOnReasonsToReconnect(t *testing.T) {
	reasons := []wire.CloseReason{wire.CloseShutdown, wire.CloseIdle, wire.CloseTooSlow, wire.CloseOverloaded, "from_the_future"}
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
	s, rec := connect(t, n.tcp, "me", fast)
	for i, reason := range reasons {
		waitFor(t, "the session on the node", func() bool { return n.srv.Registry().Get("me") != nil })
		n.srv.Registry().Get("me").Close(reason)
		st := rec.reconnected(t, i+2)
		var ce *client.CloseError
		if !errors.As(st.Err, &ce) || ce.Reason != reason {
			t.Fatalf("reconnected after %v; want %s", st.Err, reason)
		}
	}
	if s.Err() != nil {
		t.Fatalf("Err() = %v while the session runs", s.Err())
	}
}

// After replaced, revoked and protocol the session does not reconnect: it
// stops and Err says why. So does token_expired with a static token, which
// could only be presented again.
func TestSessionStopsOnReasonsNotToReconnect(t *testing.T) {
	for _, reason := range []wire.CloseReason{wire.CloseRevoked, wire.CloseProtocol, wire.CloseTokenExpired, wire.CloseNormal} {
		t.Run(string(reason), func(t *testing.T) {
			n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
			s, rec := connect(t, n.tcp, "me", fast)
			waitFor(t, "the session on the node", func() bool { return n.srv.Registry().Get("me") != nil })
			n.srv.Registry().Get("me").Close(reason)
			if got := stopped(t, s); got != reason {
				t.Fatalf("stopped on %s; want %s", got, reason)
			}
			if c := len(rec.connects()); c != 1 {
				t.Fatalf("%d connections; want 1", c)
			}
		})
	}
	t.Run("replaced", func(t *testing.T) {
		n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, nil)
		s, _ := connect(t, n.tcp, "me", fast)
		newer, err := client.Dial(t.Context(), n.tcp, client.Options{Session: "me"})
		if err != nil {
			t.Fatal(err)
		}
		defer newer.Close()
		if got := stopped(t, s); got != wire.CloseReplaced {
			t.Fatalf("stopped on %s; want replaced", got)
		}
		for _, err := range s.Request(t.Context(), "any", nil) {
			if !errors.Is(err, client.ErrDisconnected) {
				t.Fatalf("request on a stopped session: %v; want ErrDisconnected", err)
			}
		}
	})
}

// tokens is an authenticator that accepts the tokens it minted, each
// naming session "me", and records every token presented.
type tokens struct {
	mu        sync.Mutex
	minted    int      // guarded by mu
	presented []string // guarded by mu
	refuse    bool     // guarded by mu: mint tokens the node refuses
}

func (k *tokens) mint(context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.minted++
	if k.refuse {
		return "bad", nil
	}
	return fmt.Sprintf("tok-%d", k.minted), nil
}

func (k *tokens) Authenticate(_ context.Context, cr edge.Credentials) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.presented = append(k.presented, cr.Token)
	if cr.Token == "bad" || cr.Token == "" {
		return "", errors.New("token refused")
	}
	return "me", nil
}

func (k *tokens) seen() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.presented)
}

// The token callback is called before every connect, and after
// token_expired the session reconnects with the fresh token; once the
// tokens it gets are refused (auth), it stops.
func TestSessionTokenPerConnect(t *testing.T) {
	k := &tokens{}
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", k, nil)
	r := fast
	r.Token = k.mint
	s, rec := connect(t, n.tcp, "", r)
	for i := 2; i <= 3; i++ {
		waitFor(t, "the session on the node", func() bool { return n.srv.Registry().Get("me") != nil })
		n.srv.Registry().Get("me").Close(wire.CloseTokenExpired)
		rec.reconnected(t, i)
	}
	if got, want := k.seen(), []string{"tok-1", "tok-2", "tok-3"}; !slices.Equal(got, want) {
		t.Fatalf("tokens presented %q; want %q", got, want)
	}
	k.mu.Lock()
	k.refuse = true
	k.mu.Unlock()
	n.srv.Registry().Get("me").Close(wire.CloseShutdown)
	if got := stopped(t, s); got != wire.CloseAuth {
		t.Fatalf("stopped on %s; want auth", got)
	}
	if got := len(k.seen()); got != 4 {
		t.Fatalf("%d connects; want 4 (no retry after auth)", got)
	}
}

// A first connect refused with auth fails at once: no retries.
func TestConnectRefused(t *testing.T) {
	k := &tokens{refuse: true}
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", k, nil)
	r := fast
	r.Token = k.mint
	_, err := client.Connect(t.Context(), n.tcp, client.Options{}, r)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != wire.CloseAuth {
		t.Fatalf("Connect = %v; want close reason auth", err)
	}
	if got := len(k.seen()); got != 1 {
		t.Fatalf("%d attempts; want 1", got)
	}
}

// A request in flight when the connection drops ends with an error that
// matches ErrDisconnected; it is not sent again.
func TestSessionRequestInFlightWhenTheConnectionDrops(t *testing.T) {
	started := make(chan struct{}, 4)
	hang := func(ctx context.Context, _ *edge.Request) (edge.Response, error) {
		started <- struct{}{}
		<-ctx.Done()
		return edge.Response{}, ctx.Err()
	}
	n := startEdge(t, "A", "127.0.0.1:0", "127.0.0.1:0", nil, map[string]edge.Handler{"hang": hang})
	s, rec := connect(t, n.tcp, "me", fast)
	go func() {
		<-started
		n.accepted.cut()
	}()
	var got error
	for _, err := range s.Request(t.Context(), "hang", nil) {
		got = err
	}
	if !errors.Is(got, client.ErrDisconnected) {
		t.Fatalf("request ended with %v; want ErrDisconnected", got)
	}
	rec.reconnected(t, 2)
	if len(started) != 0 {
		t.Fatal("the request was sent again")
	}
}
