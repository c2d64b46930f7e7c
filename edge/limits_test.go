package edge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// stillReceives pushes to session on n and checks that c, its client,
// gets the push: a limit on another client leaves this one alone.
func stillReceives(t *testing.T, n *node, c *client.Conn, session string) {
	t.Helper()
	id := fmt.Sprintf("%s-%d", session, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := n.handle(t, session).Push(ctx, push.High, pushOf(id, "x")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, c); f.ID != id {
		t.Fatalf("%s got push %q; want %q", session, f.ID, id)
	}
}

// closeFrame reads TCP frames from r until the close frame, skipping
// others, and returns it; it fails if the stream ends first.
func closeFrame(t *testing.T, nc net.Conn, br *bufio.Reader) wire.Frame {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		body, err := wire.ReadTCP(br, nil, wire.DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("read before a close frame: %v", err)
		}
		f, err := wire.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == wire.TypeClose {
			return f
		}
	}
}

// refusedTCP connects to addr, sending nothing first, and returns the
// close frame the node answers with.
func refusedTCP(t *testing.T, addr string, prefix []byte) wire.Frame {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if len(prefix) > 0 {
		if _, err := nc.Write(prefix); err != nil {
			t.Fatal(err)
		}
	}
	return closeFrame(t, nc, bufio.NewReader(nc))
}

// refusedWS connects to addr, sending the upgrade request for session if
// one is given (nothing if not), and returns the HTTP status line and the
// Retry-After header the node answers with.
func refusedWS(t *testing.T, addr string, session ...string) (status, retryAfter string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, s := range session {
		_, _ = fmt.Fprintf(nc, "GET /?session=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", s, addr)
	}
	_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(nc)
	status, err = br.ReadString('\n')
	if err != nil {
		t.Fatalf("read the refusal: %v", err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			return strings.TrimSpace(status), retryAfter
		}
		if v, ok := strings.CutPrefix(line, "Retry-After: "); ok {
			retryAfter = strings.TrimSpace(v)
		}
	}
}

func wantRefusal(t *testing.T, f wire.Frame, reason wire.CloseReason, text string) {
	t.Helper()
	if wire.CloseReason(f.Name) != reason || !strings.Contains(string(f.Payload), text) {
		t.Fatalf("closed %q (%q); want %s, saying %q", f.Name, f.Payload, reason, text)
	}
}

// Past MaxSessions a new client is refused: a WebSocket upgrade with 503
// and Retry-After, a TCP client closed overloaded; the node says it is
// full until it holds nine tenths of the limit again. A takeover of a
// session it holds is never refused, and the sessions it holds keep
// getting their pushes.
func TestSessionLimit(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxSessions = 20
	n := startNode(t, cfg, edge.Options{})
	clients := make([]*client.Conn, 20)
	for i := range clients {
		if n.srv.Full() {
			t.Fatalf("full at %d sessions of 20", i)
		}
		clients[i] = dial(t, n.tcp, fmt.Sprintf("s%02d", i), client.Options{})
	}
	if !n.srv.Full() {
		t.Fatal("not full at 20 sessions of 20")
	}
	if status, retry := refusedWS(t, n.wsAddr, "one-more"); status != "HTTP/1.1 503 Service Unavailable" || retry != "1" {
		t.Fatalf("the 21st session's upgrade answered %q, Retry-After %q; want 503, 1", status, retry)
	}
	// The Go client says what the edge said.
	_, err := client.Dial(t.Context(), n.ws, client.Options{Session: "one-more"})
	var ue *client.UpgradeError
	if !errors.As(err, &ue) || ue.Status != 503 || ue.RetryAfter != time.Second || !strings.Contains(ue.Message, "as many sessions") {
		t.Fatalf("the Go client's dial: %v; want an UpgradeError 503, the edge's message, retry after 1s", err)
	}
	nc, err := net.Dial("tcp", n.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, ID: "one-more"})
	_, _ = nc.Write(b)
	wantRefusal(t, closeFrame(t, nc, bufio.NewReader(nc)), wire.CloseOverloaded, "as many sessions")
	if status, _ := refusedWS(t, n.wsAddr, ""); status != "HTTP/1.1 101 Switching Protocols" {
		t.Fatalf("an upgrade that fails authentication answered %q; want upgraded, to be told auth", status)
	}
	again := dial(t, n.ws, "s00", client.Options{}) // a takeover: no session more
	stillReceives(t, n, again, "s00")
	stillReceives(t, n, clients[1], "s01")
	st := n.srv.Stats()
	if st.LimitRefusals[edge.LimitSessions] != 3 || st.Rejections[edge.RejectOverloaded] != 3 {
		t.Fatalf("refusals %v, rejections %v; want 3 at the session limit", st.LimitRefusals, st.Rejections)
	}
	_ = clients[19].Close()
	waitStats(t, n.srv, "19 sessions", func(s edge.Stats) bool { return s.Sessions == 20-1 })
	if !n.srv.Full() {
		t.Fatal("ready at 19 sessions of 20; want full until 18")
	}
	_ = clients[18].Close()
	waitStats(t, n.srv, "18 sessions", func(s edge.Stats) bool { return s.Sessions == 18 })
	if n.srv.Full() {
		t.Fatal("still full at 18 sessions of 20")
	}
	dial(t, n.tcp, "welcome-again", client.Options{})
}

// Past ConnectRate a socket is closed before its handshake: a TCP client
// is told overloaded, a WebSocket client gets 429 with Retry-After.
func TestConnectRate(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.ConnectRate = 0.2 // a burst of one, then one every 5 s
	n := startNode(t, cfg, edge.Options{})
	c := dial(t, n.tcp, "first", client.Options{})
	wantRefusal(t, refusedTCP(t, n.tcpAddr, nil), wire.CloseOverloaded, "connect_rate limit")
	if status, retry := refusedWS(t, n.wsAddr); status != "HTTP/1.1 429 Too Many Requests" || retry != "1" {
		t.Fatalf("WebSocket refused with %q, Retry-After %q; want 429, 1", status, retry)
	}
	stillReceives(t, n, c, "first")
	st := n.srv.Stats()
	if st.LimitRefusals[edge.LimitConnectRate] != 2 || st.Rejections[edge.RejectOverloaded] != 2 || st.Handshakes != 0 {
		t.Fatalf("refusals %v, rejections %v, %d in handshake; want 2 at the connect rate, none in handshake",
			st.LimitRefusals, st.Rejections, st.Handshakes)
	}
}

// proxied is a PROXY v2 header for a client at src.
func proxied(t *testing.T, src string) []byte {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proxyproto.HeaderProxyFromAddrs(2, a, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 8081}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Behind a load balancer that sends PROXY headers, ConnectRatePerIP holds
// for each client the headers name, not for the balancer's address.
func TestConnectRatePerIPBehindAProxy(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.ConnectRatePerIP = 0.2
	cfg.ProxyProtocol = []string{"127.0.0.1"}
	n := startNode(t, cfg, edge.Options{Auth: openAuth{}})
	hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, ID: "a"})
	welcomed := func(src string) {
		t.Helper()
		nc, err := net.Dial("tcp", n.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		_, _ = nc.Write(append(proxied(t, src), hello...))
		_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
		body, err := wire.ReadTCP(bufio.NewReader(nc), nil, wire.DefaultMaxFrameSize)
		if f, _ := wire.Decode(body); err != nil || f.Type != wire.TypeWelcome {
			t.Fatalf("client %s: %v %v; want welcomed", src, f.Type, err)
		}
	}
	welcomed("203.0.113.7:4000")
	wantRefusal(t, refusedTCP(t, n.tcpAddr, proxied(t, "203.0.113.7:4001")), wire.CloseOverloaded, "connect_rate_per_ip")
	welcomed("203.0.113.8:4000")
	welcomed("[2001:db8::1]:4000")
	wantRefusal(t, refusedTCP(t, n.tcpAddr, proxied(t, "[2001:db8::2]:4000")), wire.CloseOverloaded, "connect_rate_per_ip") // the same /64
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitConnectRatePerIP] != 2 {
		t.Fatalf("refusals %v; want 2 at the connect rate per address", st.LimitRefusals)
	}
}

// openAuth lets any client in as the session it names, from anywhere
// (development mode would refuse the PROXY headers' addresses).
type openAuth struct{ groups []string }

func (openAuth) Authenticate(_ context.Context, cr edge.Credentials) (string, error) {
	return cr.Session, nil
}

func (a openAuth) AuthenticateGroups(_ context.Context, cr edge.Credentials) (string, []string, error) {
	return cr.Session, a.groups, nil
}

// Without a load balancer, ConnectRatePerIP holds for the socket's own
// address.
func TestConnectRatePerIP(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.ConnectRatePerIP = 0.2
	n := startNode(t, cfg, edge.Options{})
	c := dial(t, n.ws, "first", client.Options{})
	if status, _ := refusedWS(t, n.wsAddr); status != "HTTP/1.1 429 Too Many Requests" {
		t.Fatalf("WebSocket refused with %q; want 429", status)
	}
	stillReceives(t, n, c, "first")
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitConnectRatePerIP] != 1 {
		t.Fatalf("refusals %v; want 1 at the connect rate per address", st.LimitRefusals)
	}
}

// Past MaxHandshakes a new socket is closed at once; once the handshakes
// in flight end, sockets are taken again.
func TestHandshakeLimit(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxHandshakes = 2
	n := startNode(t, cfg, edge.Options{})
	c := dial(t, n.tcp, "first", client.Options{})
	var silent []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", n.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		silent = append(silent, nc)
	}
	waitStats(t, n.srv, "two handshakes in flight", func(s edge.Stats) bool { return s.Handshakes == 2 })
	wantRefusal(t, refusedTCP(t, n.tcpAddr, nil), wire.CloseOverloaded, "handshakes limit")
	if status, retry := refusedWS(t, n.wsAddr); status != "HTTP/1.1 503 Service Unavailable" || retry != "1" {
		t.Fatalf("WebSocket refused with %q, Retry-After %q; want 503, 1", status, retry)
	}
	stillReceives(t, n, c, "first")
	for _, nc := range silent {
		_ = nc.Close()
	}
	waitStats(t, n.srv, "no handshake in flight", func(s edge.Stats) bool { return s.Handshakes == 0 })
	dial(t, n.ws, "second", client.Options{})
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitHandshakes] != 2 {
		t.Fatalf("refusals %v; want 2 at the handshake limit", st.LimitRefusals)
	}
}

// A client flooding pings past ClientFrameRate is closed overloaded;
// another client meanwhile gets its pushes.
func TestClientFrameRate(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.ClientFrameRate, cfg.ClientFrameBurst = 5, 10
	n := startNode(t, cfg, edge.Options{})
	other := dial(t, n.ws, "other", client.Options{})
	r := rawTCP(t, n, "flood")
	var flood []byte
	for range 50 {
		flood, _ = wire.AppendTCP(flood, &wire.Frame{Type: wire.TypePing})
	}
	r.sendBytes(t, flood)
	wantRefusal(t, closeFrame(t, r.nc, r.br), wire.CloseOverloaded, "frames a second")
	stillReceives(t, n, other, "other")
	_ = r.nc.Close()
	st := waitStats(t, n.srv, "the flood's end", func(s edge.Stats) bool { return s.Disconnects[wire.CloseOverloaded] == 1 })
	if st.LimitRefusals[edge.LimitClientFrameRate] != 1 {
		t.Fatalf("refusals %v; want 1 at the client frame rate", st.LimitRefusals)
	}
}

// WebSocket pings count as frames.
func TestClientFrameRateCountsWebSocketPings(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.ClientFrameRate, cfg.ClientFrameBurst = 5, 10
	n := startNode(t, cfg, edge.Options{})
	nc, br := rawWS(t, n, "flood")
	var flood []byte
	for range 50 {
		flood = wire.AppendWSControl(flood, wire.WSPing, nil, &[4]byte{1, 2, 3, 4})
	}
	if _, err := nc.Write(flood); err != nil {
		t.Fatal(err)
	}
	if frame, code := readUntilWSClose(t, br); frame != string(wire.CloseOverloaded) || code != wire.CloseOverloaded.WSCode() {
		t.Fatalf("closed %q, code %d; want overloaded, %d", frame, code, wire.CloseOverloaded.WSCode())
	}
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitClientFrameRate] != 1 {
		t.Fatalf("refusals %v; want 1 at the client frame rate", st.LimitRefusals)
	}
}

// A client sending more bytes a second than ClientByteRate allows is
// closed overloaded.
func TestClientByteRate(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.ClientByteRate, cfg.ClientByteBurst = 100, 2000
	n := startNode(t, cfg, edge.Options{})
	other := dial(t, n.tcp, "other", client.Options{})
	r := rawTCP(t, n, "heavy")
	ping, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypePing, Payload: make([]byte, 1200)})
	r.sendBytes(t, append(ping, ping...)) // the first fits the burst; the second finds 800 left
	wantRefusal(t, closeFrame(t, r.nc, r.br), wire.CloseOverloaded, "bytes a second")
	stillReceives(t, n, other, "other")
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitClientByteRate] != 1 || st.LimitRefusals[edge.LimitClientFrameRate] != 0 {
		t.Fatalf("refusals %v; want 1 at the client byte rate", st.LimitRefusals)
	}
}

// Requests past RequestRate are answered rate_limited; the connection
// stays open and answers again once the bucket refills.
func TestRequestRate(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.RequestRate, cfg.RequestBurst = 0.5, 2
	echo := func(_ context.Context, r *edge.Request) (edge.Response, error) {
		return edge.Reply(edge.Frame{Payload: r.Payload}), nil
	}
	n := startNode(t, cfg, edge.Options{Handlers: map[string]edge.Handler{"echo": echo}})
	c := dial(t, n.tcp, "asker", client.Options{})
	var codes []string
	for range 4 {
		code := "ok"
		for _, err := range c.Request(context.Background(), "echo", []byte("x")) {
			var re *client.RequestError
			if errors.As(err, &re) {
				code = string(re.Code)
			} else if err != nil {
				t.Fatal(err)
			}
		}
		codes = append(codes, code)
	}
	if got := strings.Join(codes, " "); got != "ok ok rate_limited rate_limited" {
		t.Fatalf("answers %s; want ok ok rate_limited rate_limited", got)
	}
	stillReceives(t, n, c, "asker")
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitRequestRate] != 2 || st.Disconnects[wire.CloseOverloaded] != 0 {
		t.Fatalf("refusals %v, disconnects %v; want 2 at the request rate, none closed", st.LimitRefusals, st.Disconnects)
	}
}

// Partly received frames share MaxPendingFrameBytes: a client whose frame
// cannot have memory under it is closed overloaded, the one holding it
// finishes its frame, and the budget is given back.
func TestPendingFrameBudget(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxFrameSize, cfg.MaxPendingFrameBytes = 64<<10, 64<<10
	cfg.ClientByteRate = 0
	n := startNode(t, cfg, edge.Options{})
	other := dial(t, n.ws, "other", client.Options{})
	big, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypePing, Payload: make([]byte, 60<<10)})
	holder := rawTCP(t, n, "holder")
	holder.sendBytes(t, big[:40<<10])
	waitStats(t, n.srv, "the held frame's reservation", func(s edge.Stats) bool { return s.PendingFrameBytes == 64<<10 })
	second := rawTCP(t, n, "second")
	second.sendBytes(t, big[:10<<10])
	wantRefusal(t, closeFrame(t, second.nc, second.br), wire.CloseOverloaded, "partly received frames")
	nc, br := rawWS(t, n, "third")
	third, _ := wire.AppendWSMasked(nil, &wire.Frame{Type: wire.TypePing, Payload: make([]byte, 60<<10)}, [4]byte{1, 2, 3, 4})
	if _, err := nc.Write(third[:10<<10]); err != nil {
		t.Fatal(err)
	}
	if frame, code := readUntilWSClose(t, br); frame != string(wire.CloseOverloaded) || code != wire.CloseOverloaded.WSCode() {
		t.Fatalf("WebSocket client closed %q, code %d; want overloaded", frame, code)
	}
	stillReceives(t, n, other, "other")
	holder.sendBytes(t, big[40<<10:])
	if f := holder.next(t); f.Type != wire.TypePong || len(f.Payload) != 60<<10 {
		t.Fatalf("holder got %v of %d bytes; want its pong", f.Type, len(f.Payload))
	}
	st := waitStats(t, n.srv, "the budget given back", func(s edge.Stats) bool { return s.PendingFrameBytes == 0 })
	if st.LimitRefusals[edge.LimitPendingFrameBytes] != 2 {
		t.Fatalf("refusals %v; want 2 at the pending frame budget", st.LimitRefusals)
	}
}

// A token naming more groups than MaxGroups is refused auth, saying why.
func TestGroupLimit(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxGroups = 2
	n := startNode(t, cfg, edge.Options{Auth: openAuth{groups: []string{"a", "b", "c"}}})
	_, err := client.Dial(context.Background(), n.tcp, client.Options{Session: "member"})
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != wire.CloseAuth || !strings.Contains(ce.Message, "3 groups; this node allows at most 2") {
		t.Fatalf("dial: %v; want refused auth for 3 groups of 2", err)
	}
	if st := n.srv.Stats(); st.LimitRefusals[edge.LimitGroups] != 1 || st.Rejections[edge.RejectAuth] != 1 {
		t.Fatalf("refusals %v, rejections %v; want 1 at the group limit, counted auth", st.LimitRefusals, st.Rejections)
	}
}

// MaxGroups bounds the groups a connection joins later too.
func TestGroupLimitBoundsChanges(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxGroups = 2
	n := startNode(t, cfg, edge.Options{})
	dial(t, n.tcp, "member", client.Options{})
	if _, _, err := n.handle(t, "member").ChangeGroups([]string{"a", "b", "c"}, nil); err == nil || !strings.Contains(err.Error(), "at most 2") {
		t.Fatalf("joining 3 groups of 2: %v; want refused", err)
	}
}
