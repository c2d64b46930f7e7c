package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// upgradeRequest is a WebSocket upgrade request for the node's WebSocket
// listener, with extra header lines.
func upgradeRequest(n *node, target string, extra ...string) string {
	var b strings.Builder
	b.WriteString("GET " + target + " HTTP/1.1\r\nHost: " + n.wsAddr + "\r\n")
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	return b.String() + "\r\n"
}

// rawUpgrade sends request bytes to the WebSocket listener and reads the
// HTTP response; the connection is returned with a reader positioned after
// the response's headers.
func rawUpgrade(t testing.TB, n *node, request []byte) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", n.wsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write(request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the upgrade response: %v", err)
	}
	return resp, nc, br
}

// A request line or headers that never end cannot make the node buffer
// without bound: past MaxHandshakeSize the client gets 431 and the socket
// is closed, long before the handshake timeout.
func TestUpgradeRequestIsBounded(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.HandshakeTimeout = time.Hour // only the size limit can end these
	var o edge.Options
	reg := withMetrics(t, &o)
	n := startNode(t, cfg, o)
	for name, start := range map[string]string{
		"request line": "GET /?session=",
		"headers":      "GET /?session=x HTTP/1.1\r\nHost: " + n.wsAddr + "\r\nX-Pad: ",
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", n.wsAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(testTimeout))
			const attack = 64 << 20
			sent := make(chan int, 1)
			go func() {
				total := len(start)
				_, err := nc.Write([]byte(start))
				chunk := bytes.Repeat([]byte("a"), 64<<10)
				for err == nil && total < attack {
					var k int
					k, err = nc.Write(chunk)
					total += k
				}
				sent <- total
			}()
			if total := <-sent; total >= attack {
				t.Fatalf("the node took all %d bytes of a request that never ends", total)
			}
		})
	}
	if got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectHandshake); got != 2 {
		t.Fatalf("handshake rejections %v; want 2", got)
	}

	// A client that stops short of its own excess reads the 431.
	padding := "X-Pad: " + strings.Repeat("p", cfg.MaxHandshakeSize)
	resp, _, _ := rawUpgrade(t, n, []byte(upgradeRequest(n, "/?session=big", padding)))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d; want 431", resp.StatusCode)
	}

	// Just under the limit is accepted: room for a large token.
	padding = "X-Pad: " + strings.Repeat("p", cfg.MaxHandshakeSize-600)
	if resp, _, _ := rawUpgrade(t, n, []byte(upgradeRequest(n, "/?session=large", padding))); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d for a request under the limit; want 101", resp.StatusCode)
	}
}

// A TCP hello over MaxHandshakeSize is refused with close reason protocol
// before its body is read.
func TestTCPHelloIsBounded(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxHandshakeSize = 1024
	n := startNode(t, cfg, edge.Options{})
	nc, err := net.Dial("tcp", n.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := &rawConn{nc: nc, br: bufio.NewReader(nc)}
	r.send(t, wire.Frame{Type: wire.TypeHello, ID: "h", Payload: bytes.Repeat([]byte("t"), 2048)})
	if f := r.next(t); f.Type != wire.TypeClose || f.Name != string(wire.CloseProtocol) {
		t.Fatalf("got %v %q; want close protocol", f.Type, f.Name)
	}
}

// Bytes a client sends right behind its handshake, in the same write, are
// read as its first frames, on both transports.
func TestFramesRightAfterTheHandshake(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{Handlers: map[string]edge.Handler{"echo": echo}})
	req := wire.Frame{Type: wire.TypeRequest, ID: "r1", Name: "echo", Payload: []byte("early")}

	frame, err := wire.AppendWSMasked(nil, &req, [4]byte{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	resp, nc, br := rawUpgrade(t, n, append([]byte(upgradeRequest(n, "/?session=early-ws")), frame...))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d; want 101", resp.StatusCode)
	}
	p := &peer{nc: nc, ws: true, frames: make(chan wire.Frame, 16), done: make(chan struct{}), pinged: make(chan struct{})}
	go p.read(br)
	t.Cleanup(func() { _ = nc.Close(); <-p.done })
	checkEarlyEcho(t, p)

	tcp, err := net.Dial("tcp", n.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, ID: "early-tcp"})
	b, _ = wire.AppendTCP(b, &req)
	if _, err := tcp.Write(b); err != nil {
		t.Fatal(err)
	}
	p = &peer{nc: tcp, frames: make(chan wire.Frame, 16), done: make(chan struct{}), pinged: make(chan struct{})}
	go p.read(bufio.NewReader(tcp))
	t.Cleanup(func() { _ = tcp.Close(); <-p.done })
	checkEarlyEcho(t, p)
}

func checkEarlyEcho(t *testing.T, p *peer) {
	t.Helper()
	if f := p.next(t); f.Type != wire.TypeWelcome {
		t.Fatalf("got %v; want welcome", f.Type)
	}
	if f := p.next(t); f.Type != wire.TypeResponse || string(f.Payload) != "early" {
		t.Fatalf("got %v %q; want the response to the early request", f.Type, f.Payload)
	}
}

// The Go client's upgrade and a bearer token still work with a small
// handshake limit, and a request over it is refused at dial.
func TestHandshakeLimitAndGoClient(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.MaxHandshakeSize = 1024
	n := startNode(t, cfg, edge.Options{})
	dial(t, n.ws, "small", client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := client.Dial(ctx, n.ws, client.Options{Session: "s", Token: strings.Repeat("t", 2048)})
	var ue *client.UpgradeError
	if !errors.As(err, &ue) || ue.Status != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(ue.Message, "over 1024 bytes") {
		t.Fatalf("dial with a 2 KiB token: %v; want status 431, saying the limit", err)
	}
}
