package tests

import (
	"bufio"
	"context"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/pires/go-proxyproto"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The node's limits attacked from outside, against the edge binary: what
// an attacker on the network can send, each attack checked for the
// refusal, its count, the memory it may hold and the sessions that must
// keep receiving meanwhile.

// startLimitEdge runs the edge binary on s with both client listeners,
// tokens, and args (the limits under attack).
func startLimitEdge(t *testing.T, s *server.Server, args ...string) *edgeProcess {
	t.Helper()
	return startEdgeProcess(t, t.TempDir(), append([]string{"--nats-url", s.ClientURL(), "--ws-listen", "127.0.0.1:0",
		"--tcp-listen", "127.0.0.1:0", "--jwt-secret-file", writeSecret(t)}, args...)...)
}

// metric is one value of the binary's /metrics.
func (p *edgeProcess) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	_, mfs := scrapeAddr(t, p.addr("admin"))
	return value(t, mfs, name, labels...)
}

// readyz is the binary's /readyz status code.
func (p *edgeProcess) readyz(t *testing.T) int {
	t.Helper()
	code, _ := getStatus(t, "http://"+p.addr("admin")+"/readyz")
	return code
}

// upgradeRequest is a WebSocket upgrade request for tok to addr.
func upgradeRequest(addr, tok string) string {
	return fmt.Sprintf("GET /?token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", tok, addr)
}

// dialSocket connects to addr from the local address from ("" for any).
func dialSocket(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	return nc
}

// closedByPeer reports whether nc's peer has closed it (EOF or reset),
// reading and dropping whatever came first.
func closedByPeer(nc net.Conn) bool {
	_, err := io.Copy(io.Discard, nc)
	return err == nil || !isTimeoutErr(err)
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tcpCloseReason reads frames from a framed-TCP socket until a close
// frame and returns its reason ("" if the socket ended without one).
func tcpCloseReason(nc net.Conn) wire.CloseReason {
	br := bufio.NewReader(nc)
	for {
		body, err := wire.ReadTCP(br, nil, wire.DefaultMaxFrameSize)
		if err != nil {
			return ""
		}
		if f, err := wire.Decode(body); err == nil && f.Type == wire.TypeClose {
			return wire.CloseReason(f.Name)
		}
	}
}

// dribble writes msg one byte every 50 ms, all but its last byte, until a
// write fails: a slowloris client that never finishes.
func dribble(nc net.Conn, msg []byte) {
	for _, b := range msg[:len(msg)-1] {
		if _, err := nc.Write([]byte{b}); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // the attacker's pace, not a wait for the node
	}
}

// Slowloris against the binary: sockets sending a WebSocket upgrade or a
// TCP hello one byte at a time take every --max-handshakes slot; one more
// socket is refused at once (WebSocket 503 with Retry-After, TCP close
// overloaded), the node stays ready and a held session keeps receiving;
// at --handshake-timeout the node closes every dribbler and takes new
// clients again.
func TestEdgeBinarySlowlorisHandshakes(t *testing.T) {
	s := natstest.Server(t)
	p := startLimitEdge(t, s, "--max-handshakes", "8", "--handshake-timeout", "3s")
	steady := dial(t, "tcp://"+p.addr("tcp"), "steady", client.Options{})
	hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, Payload: []byte(mint(t, "slow"))})
	var slow []net.Conn
	var wg sync.WaitGroup
	for i := range 8 {
		addr, msg := p.addr("websocket"), []byte(upgradeRequest(p.addr("websocket"), mint(t, "slow")))
		if i%2 == 1 {
			addr, msg = p.addr("tcp"), hello
		}
		nc := dialSocket(t, "", addr)
		slow = append(slow, nc)
		wg.Go(func() { dribble(nc, msg) })
	}
	defer wg.Wait()
	waitFor(t, "8 handshakes in flight", func() bool { return p.metric(t, "pushfabric_handshakes") == 8 })
	wait := steadyPushes(t, s, steady, "steady", 500)
	ws := dialSocket(t, "", p.addr("websocket"))
	_, _ = io.WriteString(ws, upgradeRequest(p.addr("websocket"), mint(t, "ninth")))
	resp, err := http.ReadResponse(bufio.NewReader(ws), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a ninth WebSocket socket: %v %v; want 503 with Retry-After: 1", resp, err)
	}
	if r := tcpCloseReason(dialSocket(t, "", p.addr("tcp"))); r != wire.CloseOverloaded {
		t.Fatalf("a ninth TCP socket closed %q; want overloaded", r)
	}
	if code := p.readyz(t); code != http.StatusOK {
		t.Fatalf("/readyz %d under a slowloris; want 200 (the node has room for sessions)", code)
	}
	wait()
	for i, nc := range slow {
		if !closedByPeer(nc) {
			t.Fatalf("dribbler %d not closed by the node after --handshake-timeout", i)
		}
	}
	waitFor(t, "no handshake in flight", func() bool { return p.metric(t, "pushfabric_handshakes") == 0 })
	dial(t, "ws://"+p.addr("websocket")+"/", "after", client.Options{})
	if v := p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitHandshakes); v != 2 {
		t.Fatalf("limit_refusals_total{limit=handshakes} %v; want 2", v)
	}
	if v := p.metric(t, "pushfabric_rejections_total", "reason=handshake"); v != 8 {
		t.Fatalf("rejections_total{reason=handshake} %v; want 8 (each dribbler timed out)", v)
	}
}

// rawConn is a client connection by hand, framed TCP or WebSocket, for
// sending what the client package never would.
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
	ws bool
}

// wsMask is the mask of every frame rawConn sends over WebSocket.
var wsMask = [4]byte{1, 2, 3, 4}

// dialRawAs connects to the binary as session over framed TCP, or
// WebSocket if ws, and reads the welcome.
func dialRawAs(t *testing.T, p *edgeProcess, session string, ws bool) *rawConn {
	t.Helper()
	c := &rawConn{ws: ws}
	if !ws {
		c.nc = dialSocket(t, "", p.addr("tcp"))
		c.br = bufio.NewReader(c.nc)
		hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, Payload: []byte(mint(t, session))})
		c.write(t, hello)
	} else {
		c.nc = dialSocket(t, "", p.addr("websocket"))
		c.br = bufio.NewReader(c.nc)
		c.write(t, []byte(upgradeRequest(p.addr("websocket"), mint(t, session))))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: upgrade answered %v, %v", session, resp, err)
		}
	}
	if f, err := c.next(); err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("%s: first frame %v, %v; want welcome", session, f.Type, err)
	}
	return c
}

func (c *rawConn) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// frame encodes f as this connection sends it.
func (c *rawConn) frame(f *wire.Frame) []byte {
	if c.ws {
		b, _ := wire.AppendWSMasked(nil, f, wsMask)
		return b
	}
	b, _ := wire.AppendTCP(nil, f)
	return b
}

// next reads the next protocol frame.
func (c *rawConn) next() (wire.Frame, error) {
	var body []byte
	var err error
	if c.ws {
		body, err = wire.ReadWS(c.br, nil, wire.DefaultMaxFrameSize, false, func(byte, []byte) error { return nil })
	} else {
		body, err = wire.ReadTCP(c.br, nil, wire.DefaultMaxFrameSize)
	}
	if err != nil {
		return wire.Frame{}, err
	}
	return wire.Decode(body)
}

// closeReason reads until the close frame and returns its reason; ""
// if the connection ended without one.
func (c *rawConn) closeReason() wire.CloseReason {
	for {
		f, err := c.next()
		if err != nil {
			return ""
		}
		if f.Type == wire.TypeClose {
			return wire.CloseReason(f.Name)
		}
	}
}

// gets reads until the push id arrives: the connection is still open.
func (c *rawConn) gets(t *testing.T, id string) {
	t.Helper()
	for {
		f, err := c.next()
		if err != nil || f.Type == wire.TypeClose {
			t.Fatalf("waiting for push %s: %v, %v %s (%s)", id, err, f.Type, f.Name, f.Payload)
		}
		if f.Type == wire.TypePush && f.ID == id {
			return
		}
	}
}

// Frames from one client exactly at --client-frame-burst pass and one
// past it closes the connection overloaded, protocol pings and WebSocket
// control pings alike and counted together, while another session
// receives every push meanwhile.
func TestEdgeBinaryFrameBurstEdges(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	p := startLimitEdge(t, s, "--client-frame-rate", "1", "--client-frame-burst", "10")
	steady := dial(t, "ws://"+p.addr("websocket")+"/", "steady", client.Options{})
	wait := steadyPushes(t, s, steady, "steady", 300)
	protoPings := func(c *rawConn, n int) (b []byte) {
		for range n {
			b = append(b, c.frame(&wire.Frame{Type: wire.TypePing})...)
		}
		return b
	}
	wsPings := func(n int) (b []byte) {
		for range n {
			b = wire.AppendWSControl(b, wire.WSPing, []byte("p"), &wsMask)
		}
		return b
	}
	refused := 0
	for _, c := range []struct {
		name string
		ws   bool
		send func(c *rawConn) []byte
		over bool
	}{
		{"tcp-10-pings", false, func(c *rawConn) []byte { return protoPings(c, 10) }, false},
		{"tcp-11-pings", false, func(c *rawConn) []byte { return protoPings(c, 11) }, true},
		{"ws-10-pings", true, func(c *rawConn) []byte { return protoPings(c, 10) }, false},
		{"ws-10-control-pings", true, func(*rawConn) []byte { return wsPings(10) }, false},
		{"ws-11-control-pings", true, func(*rawConn) []byte { return wsPings(11) }, true},
		{"ws-5-control-6-protocol", true, func(c *rawConn) []byte { return append(wsPings(5), protoPings(c, 6)...) }, true},
	} {
		rc := dialRawAs(t, p, c.name, c.ws)
		rc.write(t, c.send(rc))
		if c.over {
			refused++
			if r := rc.closeReason(); r != wire.CloseOverloaded {
				t.Errorf("%s: closed %q; want overloaded", c.name, r)
			}
			continue
		}
		request(t, nc, pushMsg(c.name, "high", "after-burst", "x"))
		rc.gets(t, "after-burst")
	}
	wait()
	if v := p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitClientFrameRate); v != float64(refused) {
		t.Fatalf("limit_refusals_total{limit=client_frame_rate} %v; want %d", v, refused)
	}
}

// An established client that sends part of a frame header and then
// nothing holds no budget and is closed idle; a WebSocket frame header
// announcing 2^63 bytes is refused as too large (protocol) before any
// memory is reserved for it; the node stays ready and another session
// keeps receiving.
func TestEdgeBinaryPartialAndHugeHeaders(t *testing.T) {
	s := natstest.Server(t)
	p := startLimitEdge(t, s, "--idle-timeout", "2s", "--ping-interval", "500ms")
	steady := dial(t, "ws://"+p.addr("websocket")+"/", "steady", client.Options{})
	partial := dialRawAs(t, p, "partial", false)
	partial.write(t, []byte{0, 0})
	huge := dialRawAs(t, p, "huge", true)
	hdr := []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0}
	huge.write(t, append(hdr, wsMask[:]...))
	wait := steadyPushes(t, s, steady, "steady", 300)
	if r := huge.closeReason(); r != wire.CloseProtocol {
		t.Fatalf("a 2^63-byte WebSocket frame: closed %q; want protocol", r)
	}
	if v := p.metric(t, "pushfabric_pending_frame_bytes"); v != 0 {
		t.Fatalf("pending_frame_bytes %v with only headers received; want 0", v)
	}
	if code := p.readyz(t); code != http.StatusOK {
		t.Fatalf("/readyz %d; want 200", code)
	}
	if r := partial.closeReason(); r != wire.CloseIdle {
		t.Fatalf("a half-sent frame header: closed %q; want idle", r)
	}
	wait()
}

// Many WebSocket clients each sending half of a frame just under
// --max-frame-size share --max-pending-frame-bytes: those that fit hold
// their reservation, the others are closed overloaded, the gauge never
// passes the budget, and another session keeps receiving.
func TestEdgeBinaryHalfSentFramesShareTheBudget(t *testing.T) {
	s := natstest.Server(t)
	const frameMax, budget = 64 << 10, 256 << 10
	p := startLimitEdge(t, s, "--max-frame-size", fmt.Sprint(frameMax), "--max-pending-frame-bytes", fmt.Sprint(budget))
	steady := dial(t, "tcp://"+p.addr("tcp"), "steady", client.Options{})
	wait := steadyPushes(t, s, steady, "steady", 500)
	big, _ := wire.AppendWSMasked(nil, &wire.Frame{Type: wire.TypePing, Payload: make([]byte, frameMax-64)}, wsMask)
	var half []*rawConn
	for i := range 6 { // each holds min(2 × 32 KiB, 64 KiB): 4 fit
		c := dialRawAs(t, p, fmt.Sprintf("half%d", i), true)
		c.write(t, big[:frameMax/2])
		half = append(half, c)
	}
	waitFor(t, "4 halves held and 2 refused", func() bool {
		return p.metric(t, "pushfabric_pending_frame_bytes") == budget &&
			p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitPendingFrameBytes) == 2
	})
	overloaded := 0
	for _, c := range half {
		_ = c.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if c.closeReason() == wire.CloseOverloaded {
			overloaded++
		}
	}
	if overloaded != 2 {
		t.Fatalf("%d of 6 half-sent frames closed overloaded; want 2", overloaded)
	}
	wait()
}

// proxyHeader is a PROXY v2 header for a client at src (a *net.TCPAddr,
// *net.UDPAddr or *net.UnixAddr), as a balancer or a forger sends it.
func proxyHeader(t *testing.T, src net.Addr) []byte {
	t.Helper()
	dst := net.Addr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 8081})
	switch src.(type) {
	case *net.UDPAddr:
		dst = &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 8081}
	case *net.UnixAddr:
		dst = &net.UnixAddr{Net: "unix", Name: "/lb"}
	}
	b, err := proxyproto.HeaderProxyFromAddrs(2, src, dst).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// helloVia sends a PROXY header and a hello for session from the local
// address from to the binary's TCP listener, and returns the reason the
// node closed it with, or "welcome".
func helloVia(t *testing.T, p *edgeProcess, from string, header []byte, session string) string {
	t.Helper()
	nc := dialSocket(t, from, p.addr("tcp"))
	hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, Payload: []byte(mint(t, session))})
	_, _ = nc.Write(append(header, hello...))
	br := bufio.NewReader(nc)
	body, err := wire.ReadTCP(br, nil, wire.DefaultMaxFrameSize)
	f, _ := wire.Decode(body)
	switch {
	case err != nil:
		return "no frame: " + err.Error()
	case f.Type == wire.TypeWelcome:
		return "welcome"
	}
	return f.Name
}

// PROXY headers against --connect-rate-per-ip on the binary: a source
// the node does not trust cannot pick its bucket with forged headers (its
// sockets count against its own address, and the header is refused as a
// bad hello); a trusted balancer's headers name the client whose bucket
// counts, also when they claim a datagram or a Unix socket, which cannot
// carry a client connection here and so count against the balancer.
func TestEdgeBinaryForgedProxyHeaders(t *testing.T) {
	s := natstest.Server(t)
	p := startLimitEdge(t, s, "--proxy-protocol", "127.0.0.2", "--connect-rate-per-ip", "0.1", "--connect-rate", "0")
	client := func(ip string) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000} }
	for i, want := range []string{string(wire.CloseProtocol), "overloaded", "overloaded", "overloaded"} {
		forged := proxyHeader(t, client(fmt.Sprintf("203.0.113.%d", i+1)))
		if got := helloVia(t, p, "127.0.0.1", forged, fmt.Sprint("forger", i)); got != want {
			t.Fatalf("untrusted socket %d with a forged PROXY header: %s; want %s", i, got, want)
		}
	}
	for _, c := range []struct {
		name string
		src  net.Addr
		want string
	}{
		{"client", client("203.0.113.9"), "welcome"},
		{"client-again", client("203.0.113.9"), "overloaded"},
		{"other-client", client("203.0.113.10"), "welcome"},
		{"unix", &net.UnixAddr{Net: "unix", Name: "/forged"}, "welcome"}, // the balancer's bucket
		{"unix-again", &net.UnixAddr{Net: "unix", Name: "/forged-too"}, "overloaded"},
		{"udp", &net.UDPAddr{IP: net.ParseIP("203.0.113.11"), Port: 4001}, "overloaded"},
	} {
		if got := helloVia(t, p, "127.0.0.2", proxyHeader(t, c.src), c.name); got != c.want {
			t.Errorf("trusted balancer, %s (%v): %s; want %s", c.name, c.src, got, c.want)
		}
	}
	if v := p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitConnectRatePerIP); v != 6 {
		t.Errorf("limit_refusals_total{limit=connect_rate_per_ip} %v; want 6", v)
	}
}

// A connect flood from many addresses (127.0.0.3 on) is held by
// --connect-rate though each address is within --connect-rate-per-ip:
// past the burst, WebSocket sockets are answered 429 with Retry-After
// and TCP ones closed overloaded, and a held session keeps receiving.
func TestEdgeBinaryConnectFloodFromManyAddresses(t *testing.T) {
	s := natstest.Server(t)
	p := startLimitEdge(t, s, "--connect-rate", "0.1", "--connect-rate-per-ip", "0.1")
	// The burst is one: the session below takes it.
	steady := dial(t, "tcp://"+p.addr("tcp"), "steady", client.Options{})
	wait := steadyPushes(t, s, steady, "steady", 300)
	for i := range 10 {
		from := fmt.Sprintf("127.0.0.%d", 3+i)
		if i%2 == 0 {
			if r := tcpCloseReason(dialSocket(t, from, p.addr("tcp"))); r != wire.CloseOverloaded {
				t.Fatalf("TCP socket from %s: closed %q; want overloaded", from, r)
			}
			continue
		}
		ws := dialSocket(t, from, p.addr("websocket"))
		resp, err := http.ReadResponse(bufio.NewReader(ws), nil)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("WebSocket socket from %s: %v %v; want 429 with Retry-After: 1", from, resp, err)
		}
	}
	wait()
	if v := p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitConnectRate); v != 10 {
		t.Fatalf("limit_refusals_total{limit=connect_rate} %v; want 10", v)
	}
	if v := p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitConnectRatePerIP); v != 0 {
		t.Fatalf("limit_refusals_total{limit=connect_rate_per_ip} %v; want 0", v)
	}
}

// --max-sessions on the binary, watched through its /readyz: at the limit
// the node is not ready and refuses one more session over either
// transport, while a takeover of a session it holds is let in over either;
// one session gone (19 of 20, over 90 %) leaves it not ready, a second
// (18) makes it ready, and filling it again turns it not ready again.
func TestEdgeBinarySessionLimitHysteresis(t *testing.T) {
	s := natstest.Server(t)
	p := startLimitEdge(t, s, "--max-sessions", "20")
	ws, tcp := "ws://"+p.addr("websocket")+"/", "tcp://"+p.addr("tcp")
	held := map[string]*client.Conn{}
	for i := range 20 {
		held[fmt.Sprint("s", i)] = dial(t, tcp, fmt.Sprint("s", i), client.Options{})
	}
	if code := p.readyz(t); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d at 20 of 20; want 503", code)
	}
	if _, err := client.Dial(timeout(t), tcp, client.Options{Token: mint(t, "s20")}); !isClose(err, wire.CloseOverloaded) {
		t.Fatalf("a 21st session over TCP: %v; want closed overloaded", err)
	}
	if _, err := client.Dial(timeout(t), ws, client.Options{Token: mint(t, "s20")}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a 21st session over WebSocket: %v; want refused 503", err)
	}
	held["s0"] = dial(t, ws, "s0", client.Options{}) // takeovers: never refused
	held["s1"] = dial(t, tcp, "s1", client.Options{})
	sessions := func(n float64) func() bool {
		return func() bool { return p.metric(t, "pushfabric_sessions") == n }
	}
	waitFor(t, "20 sessions after the takeovers", sessions(20))
	_ = held["s19"].Close()
	waitFor(t, "19 sessions", sessions(19))
	if code := p.readyz(t); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d at 19 of 20; want 503 until 18", code)
	}
	_ = held["s18"].Close()
	waitFor(t, "/readyz 200 at 18 of 20", func() bool { return p.readyz(t) == http.StatusOK })
	dial(t, tcp, "s18", client.Options{})
	dial(t, ws, "s19", client.Options{})
	if code := p.readyz(t); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d full again; want 503", code)
	}
	if v := p.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitSessions); v != 2 {
		t.Fatalf("limit_refusals_total{limit=sessions} %v; want 2", v)
	}
}

// stormPort is the fixed TCP port of the restart test: its clients must
// find the restarted node where the first one was.
const stormPort = "127.0.0.1:27319"

// A node restart under --max-sessions: 20 reconnecting sessions held by
// the first process and 10 more trying all along storm the second as it
// comes up; it admits exactly 20, refuses the others overloaded until
// they give up, and is not ready.
func TestEdgeBinarySessionLimitRestartStorm(t *testing.T) {
	s := natstest.Server(t)
	args := []string{"--nats-url", s.ClientURL(), "--ws-listen", "", "--tcp-listen", stormPort,
		"--jwt-secret-file", writeSecret(t), "--max-sessions", "20"}
	first := startEdgeProcess(t, t.TempDir(), args...)
	back := client.ReconnectOptions{BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
	var all []*client.Session
	defer func() {
		for _, cs := range all { // after the latecomers' goroutines: deferred first
			_ = cs.Close()
		}
	}()
	for i := range 20 {
		cs, err := client.Connect(timeout(t), "tcp://"+stormPort, client.Options{Token: mint(t, fmt.Sprint("s", i))}, back)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, cs)
	}
	late, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	defer wg.Wait()
	defer cancel()
	for i := range 10 {
		wg.Go(func() {
			cs, err := client.Connect(late, "tcp://"+stormPort, client.Options{Token: mint(t, fmt.Sprint("late", i))}, back)
			if err == nil {
				mu.Lock()
				defer mu.Unlock()
				all = append(all, cs) // holds its session: closed with the others
			}
		})
	}
	waitFor(t, "the latecomers refused", func() bool {
		return first.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitSessions) >= 10
	})
	if _, err := first.stop(t); err != nil {
		t.Fatalf("first node: %v", err)
	}
	second := startEdgeProcess(t, t.TempDir(), args...)
	waitFor(t, "20 sessions on the restarted node and latecomers refused", func() bool {
		return second.metric(t, "pushfabric_sessions") == 20 &&
			second.metric(t, "pushfabric_limit_refusals_total", "limit="+edge.LimitSessions) >= 10
	})
	if code := second.readyz(t); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d on the full restarted node; want 503", code)
	}
	cancel()
	wg.Wait()
	if v := second.metric(t, "pushfabric_sessions"); v != 20 {
		t.Fatalf("%v sessions after the storm; want 20", v)
	}
}

// TCP hellos that announce the largest --max-handshake-size and send
// nothing more cost the node the bytes that arrived, not the lengths
// announced: 200 of them announcing 1 MiB each leave its heap within a
// few MiB of where it was, and each is closed at --handshake-timeout.
func TestEdgeBinaryAnnouncedHellosHoldNoMemory(t *testing.T) {
	s := natstest.Server(t)
	p := startLimitEdge(t, s, "--max-handshake-size", fmt.Sprint(1<<20), "--handshake-timeout", "20s")
	heap := func() float64 { return p.metric(t, "go_memstats_heap_inuse_bytes") }
	before := heap()
	var hdr [wire.LengthSize]byte
	byteorder.BigEndian.PutUint32(hdr[:], 1<<20)
	var socks []net.Conn
	for range 200 {
		nc := dialSocket(t, "", p.addr("tcp"))
		if _, err := nc.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		socks = append(socks, nc)
	}
	waitFor(t, "200 hellos in their handshake", func() bool { return p.metric(t, "pushfabric_handshakes") == 200 })
	if grown := heap() - before; grown > 32<<20 {
		t.Fatalf("heap grew %.0f MiB for 200 hellos of which only the length arrived; want the bytes that arrived held", grown/(1<<20))
	}
	for _, nc := range socks {
		_ = nc.Close()
	}
	waitFor(t, "no handshake in flight", func() bool { return p.metric(t, "pushfabric_handshakes") == 0 })
}
