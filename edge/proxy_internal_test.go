package edge

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/pires/go-proxyproto"
)

// proxyHeader is a version 2 header as a load balancer sends it for a
// client at src, or a LOCAL one (its own health check) for src nil.
func proxyHeader(t testing.TB, src string) []byte {
	t.Helper()
	dst := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 8080}
	h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if src != "" {
		a, err := net.ResolveTCPAddr("tcp", src)
		if err != nil {
			t.Fatal(err)
		}
		h = proxyproto.HeaderProxyFromAddrs(2, a, dst)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A header is read exactly (what follows it stays for the handshake); the
// client is its source, or the peer for a LOCAL header; anything else is
// refused: no header, a version 1 one, a truncated one, one over the limit.
func TestReadProxyHeader(t *testing.T) {
	peer := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000}
	for _, c := range []struct {
		what string
		in   []byte
		want string // the client's address, or the error
	}{
		{"v4", proxyHeader(t, "203.0.113.7:4711"), "203.0.113.7:4711"},
		{"v6", proxyHeader(t, "[2001:db8::7]:4711"), "[2001:db8::7]:4711"},
		{"local", proxyHeader(t, ""), "10.0.0.1:40000"},
		{"none", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "no PROXY v2 header"},
		{"v1", []byte("PROXY TCP4 203.0.113.7 10.0.0.2 4711 8080\r\n"), "no PROXY v2 header"},
		{"truncated", proxyHeader(t, "203.0.113.7:4711")[:20], "unexpected EOF"},
		{"over the limit", append(append([]byte(proxyV2Signature), 0x21, 0x11, 0xff, 0xff), make([]byte, 70000)...), "over the limit of 512"},
	} {
		r := bytes.NewReader(append(c.in, "after"...))
		got, err := readProxyHeader(r, peer, 512)
		switch {
		case err != nil && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v; want %q", c.what, err, c.want)
		case err == nil && got.String() != c.want:
			t.Errorf("%s: client %s; want %s", c.what, got, c.want)
		case err == nil && r.Len() != len("after"):
			t.Errorf("%s: %d bytes after the header left; want 5", c.what, r.Len())
		}
	}
}

// A header from anywhere never panics, and a header taken is read exactly.
func FuzzReadProxyHeader(f *testing.F) {
	f.Add(proxyHeader(f, "203.0.113.7:4711"))
	f.Add(proxyHeader(f, "[2001:db8::7]:4711"))
	f.Add(proxyHeader(f, ""))
	f.Add([]byte(proxyV2Signature + "\x21\x11\x00\x00"))
	f.Add([]byte(proxyV2Signature + "\x21\x31\x00\x6c" + strings.Repeat("/", 108)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		if _, err := readProxyHeader(r, &net.TCPAddr{}, 1024); err == nil {
			if n := proxyHeaderLen + (int(in[14])<<8 | int(in[15])); len(in)-r.Len() != n {
				t.Fatalf("read %d bytes of a header of %d", len(in)-r.Len(), n)
			}
		}
	})
}

// proxiedServer is a server that trusts PROXY headers from loopback,
// serving WebSocket on a loopback port; remotes gets each connection's
// client address.
func proxiedServer(t *testing.T, proxies ...string) (addr string, srv *Server, remotes chan string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ProxyProtocol = proxies
	remotes = make(chan string, 4)
	addr, srv = serveWebSocket(t, Options{Config: cfg, Auth: namedAuth{}, Hooks: Hooks{OnConnect: func(c *Conn) error {
		remotes <- c.RemoteAddr().String()
		return nil
	}}})
	return addr, srv, remotes
}

// namedAuth lets a client name its session from anywhere (development
// authentication lets in loopback clients only, and a proxied client is
// not one).
type namedAuth struct{}

func (namedAuth) Authenticate(_ context.Context, cr Credentials) (string, error) {
	return cr.Session, nil
}

// dialProxied opens a WebSocket connection as session that first sends
// header, as a load balancer would.
func dialProxied(addr, session string, header []byte) (net.Conn, error) {
	d := ws.Dialer{NetDial: func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err == nil && header != nil {
			_, err = nc.Write(header)
		}
		return nc, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, _, _, err := d.Dial(ctx, "ws://"+addr+"/?session="+session)
	return nc, err
}

// Behind a trusted balancer a connection's address is the client's its
// header names, and the socket is still read without a buffer while it
// idles; a trusted source that sends no header is refused, and a node
// that trusts no one reads a header as a bad handshake.
func TestProxiedConnections(t *testing.T) {
	addr, srv, remotes := proxiedServer(t, "127.0.0.1/32", "10.0.0.0/8")
	nc, err := dialProxied(addr, "proxied", proxyHeader(t, "203.0.113.7:4711"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := <-remotes; got != "203.0.113.7:4711" {
		t.Fatalf("the connection's address is %s; want the client's, 203.0.113.7:4711", got)
	}
	if c := srv.Registry().Get("proxied"); c == nil || c.raw == nil {
		t.Fatalf("the proxied connection %v has no raw socket to wait on", c)
	}
	if got := srv.Registry().Get("proxied").Info().Remote; got != "203.0.113.7:4711" {
		t.Fatalf("Info().Remote is %s; want the PROXY header's, 203.0.113.7:4711", got)
	}
	if nc, err := dialProxied(addr, "direct", nil); err == nil {
		nc.Close()
		t.Fatal("a trusted source without a PROXY header was let in")
	}

	plain, _, _ := proxiedServer(t)
	if nc, err := dialProxied(plain, "forged", proxyHeader(t, "203.0.113.7:4711")); err == nil {
		nc.Close()
		t.Fatal("a node that trusts no balancer took a PROXY header")
	}
}
