package tests

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// limitClient is a framed-TCP client by hand, authenticated with a token,
// for sending what the client package never would.
type limitClient struct {
	nc net.Conn
	br *bufio.Reader
}

// dialRaw connects to n's TCP listener as session and reads the welcome.
func dialRaw(t *testing.T, n *edgeNode, session string) *limitClient {
	t.Helper()
	nc, err := net.Dial("tcp", n.Addr("tcp").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &limitClient{nc: nc, br: bufio.NewReader(nc)}
	hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, Payload: []byte(mint(t, session))})
	c.write(t, hello)
	if f := c.next(t); f.Type != wire.TypeWelcome {
		t.Fatalf("%s: first frame %v; want welcome", session, f.Type)
	}
	return c
}

func (c *limitClient) write(t *testing.T, b []byte) {
	t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := c.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// next reads the next frame.
func (c *limitClient) next(t *testing.T) wire.Frame {
	t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(testTimeout))
	body, err := wire.ReadTCP(c.br, nil, wire.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	f, err := wire.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// closedWith reads until the close frame and checks its reason.
func (c *limitClient) closedWith(t *testing.T, reason wire.CloseReason) {
	t.Helper()
	for {
		if f := c.next(t); f.Type == wire.TypeClose {
			if wire.CloseReason(f.Name) != reason {
				t.Fatalf("closed %s (%s); want %s", f.Name, f.Payload, reason)
			}
			return
		}
	}
}

// steadyPushes publishes n pushes to session over NATS, one every
// millisecond, from a goroutine; wait checks that c received all of them,
// in order.
func steadyPushes(t *testing.T, s *server.Server, c *client.Conn, session string, n int) (wait func()) {
	t.Helper()
	nc := natstest.Connect(t, s)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond) // a steady producer
		defer tick.Stop()
		for i := range n {
			_ = nc.PublishMsg(pushMsg(session, "high", fmt.Sprintf("p%d", i), "x"))
			<-tick.C
		}
		_ = nc.Flush()
	})
	return func() {
		t.Helper()
		wg.Wait()
		for i := range n {
			if f := recv(t, c); f.ID != fmt.Sprintf("p%d", i) {
				t.Fatalf("%s got push %s; want p%d", session, f.ID, i)
			}
		}
	}
}

// upgradeStatus sends n's WebSocket listener an upgrade request with tok
// and returns the status line of the answer.
func upgradeStatus(t *testing.T, n *edgeNode, tok string) string {
	t.Helper()
	addr := n.Addr("websocket").String()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	_, _ = fmt.Fprintf(nc, "GET /?token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", tok, addr)
	status, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(status)
}

// At --max-sessions the node refuses one more session (a WebSocket upgrade
// with 503, a TCP client closed overloaded) and answers /readyz 503, so the load balancer sends it no more; the sessions
// it holds keep their pushes, a takeover is let in, and /readyz is 200
// again once the node is back to 90 % of the limit.
func TestEdgeLimitSessionsTurnNotReady(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.MaxSessions = 4
	n := startEdge(t, cfg)
	readyz := "http://" + n.Addr("admin").String() + "/readyz"
	var held []*client.Conn
	for i := range 4 {
		held = append(held, dial(t, n.tcp(), fmt.Sprintf("s%d", i), client.Options{}))
	}
	if code, body := getStatus(t, readyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "session limit") {
		t.Fatalf("/readyz at the limit: %d %q; want 503 naming the session limit", code, body)
	}
	_, err := client.Dial(timeout(t), n.tcp(), client.Options{Token: mint(t, "one-more")})
	if !isClose(err, wire.CloseOverloaded) {
		t.Fatalf("a fifth session over TCP: %v; want closed overloaded", err)
	}
	if status := upgradeStatus(t, n, mint(t, "one-more")); status != "HTTP/1.1 503 Service Unavailable" {
		t.Fatalf("a fifth session's WebSocket upgrade answered %q; want 503", status)
	}
	held[0] = dial(t, n.ws(), "s0", client.Options{}) // a takeover adds no session
	wait := steadyPushes(t, s, held[1], "s1", 50)
	wait()
	_, mfs := scrape(t, n)
	if v := value(t, mfs, "pushfabric_limit_refusals_total", "limit=sessions"); v != 2 {
		t.Fatalf("limit_refusals_total{limit=sessions} %v; want 2", v)
	}
	if v := value(t, mfs, "pushfabric_rejections_total", "reason=overloaded"); v != 2 {
		t.Fatalf("rejections_total{reason=overloaded} %v; want 2", v)
	}
	_ = held[3].Close()
	waitFor(t, "/readyz 200 at 3 sessions of 4", func() bool { code, _ := getStatus(t, readyz); return code == http.StatusOK })
	dial(t, n.tcp(), "welcome-again", client.Options{})
}

// A client flooding pings past --client-frame-rate is closed overloaded,
// and one past --request-rate gets rate_limited and stays, while another
// session on the node receives every push published to it meanwhile.
func TestEdgeLimitClientFloodsLeaveOthersDelivering(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.ClientFrameRate, cfg.Edge.ClientFrameBurst = 50, 100
	cfg.Edge.RequestRate, cfg.Edge.RequestBurst = 1, 1
	n := startEdge(t, cfg)
	steady := dial(t, n.ws(), "steady", client.Options{})
	wait := steadyPushes(t, s, steady, "steady", 200)
	flood := dialRaw(t, n, "flood")
	var pings []byte
	for range 1000 {
		pings, _ = wire.AppendTCP(pings, &wire.Frame{Type: wire.TypePing})
	}
	flood.write(t, pings)
	flood.closedWith(t, wire.CloseOverloaded)
	asker := dialRaw(t, n, "asker")
	var reqs []byte
	for i := range 3 {
		reqs, _ = wire.AppendTCP(reqs, &wire.Frame{Type: wire.TypeRequest, ID: fmt.Sprint(i), Name: "nobody.serves"})
	}
	asker.write(t, reqs)
	limited := 0
	for range 3 {
		if f := asker.next(t); f.Type == wire.TypeError && f.Name == string(wire.CodeRateLimited) {
			limited++
		}
	}
	wait()
	if limited != 2 {
		t.Fatalf("%d of 3 requests answered rate_limited; want 2", limited)
	}
	_, mfs := scrape(t, n)
	for limit, want := range map[string]float64{edge.LimitClientFrameRate: 1, edge.LimitRequestRate: 2} {
		if v := value(t, mfs, "pushfabric_limit_refusals_total", "limit="+limit); v != want {
			t.Errorf("limit_refusals_total{limit=%s} %v; want %v", limit, v, want)
		}
	}
}

// Slow clients each sending part of a large frame share
// --max-pending-frame-bytes: those that find it taken are closed
// overloaded, memory stays within it, and another session keeps
// receiving.
func TestEdgeLimitPartialFramesShareABudget(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.MaxFrameSize, cfg.Edge.MaxPendingFrameBytes = 256<<10, 1<<20
	n := startEdge(t, cfg)
	steady := dial(t, n.ws(), "steady", client.Options{})
	wait := steadyPushes(t, s, steady, "steady", 100)
	big, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypePing, Payload: make([]byte, 200<<10)})
	var slow []*limitClient
	for i := range 8 { // 8 × (twice 100 KiB) would be 1.6 MiB: over the budget
		c := dialRaw(t, n, fmt.Sprintf("slow%d", i))
		c.write(t, big[:100<<10])
		slow = append(slow, c)
	}
	// Each survivor ends up holding twice its 100 KiB: at most 5 fit.
	waitFor(t, "every slow client holding its frame or closed", func() bool {
		st := n.Server.Stats()
		refused := int64(st.LimitRefusals[edge.LimitPendingFrameBytes])
		return refused >= 3 && st.PendingFrameBytes == (8-refused)*200<<10 && st.Disconnects[wire.CloseOverloaded] == uint64(refused)
	})
	for i, c := range slow {
		if n.Server.Registry().Get(fmt.Sprintf("slow%d", i)) == nil { // closed: it was told why
			c.closedWith(t, wire.CloseOverloaded)
		}
	}
	wait()
	_, mfs := scrape(t, n)
	if v := value(t, mfs, "pushfabric_pending_frame_bytes"); v > 1<<20 {
		t.Fatalf("pending_frame_bytes %v; want at most the budget", v)
	}
}

// A token naming more groups than --max-groups is refused auth, saying
// why; one within it gets its group's pushes.
func TestEdgeLimitGroupsPerToken(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.MaxGroups = 2
	n := startEdge(t, cfg)
	tok, err := token.MintGroups(secret, "many", []string{"a", "b", "c"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Dial(timeout(t), n.tcp(), client.Options{Token: tok})
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != wire.CloseAuth || !strings.Contains(ce.Message, "at most 2") {
		t.Fatalf("a token with 3 groups: %v; want refused auth, at most 2", err)
	}
	member := dialGroups(t, n.tcp(), "member", "a", "b")
	waitForSubs(t, []*server.Server{s}, "push.group.b.high", 1)
	nc := natstest.Connect(t, s)
	if err := nc.PublishMsg(&nats.Msg{Subject: "push.group.b.high", Header: nats.Header{protocol.HeaderID: {"g1"}}, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, member); f.ID != "g1" {
		t.Fatalf("member got %s; want g1", f.ID)
	}
	_, mfs := scrape(t, n)
	if v := value(t, mfs, "pushfabric_limit_refusals_total", "limit=groups"); v != 1 {
		t.Fatalf("limit_refusals_total{limit=groups} %v; want 1", v)
	}
}
