package edge

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/internal/testcert"
)

// Behind a trusted balancer passing TLS through, the PROXY header comes
// first, in the clear, and the TLS handshake after it: the connection's
// address is the header's client, and its socket, a *tls.Conn, is read
// with a buffer (no raw socket). A client that skips TLS is refused.
func TestProxiedTLS(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ProxyProtocol = []string{"127.0.0.1/32"}
	remotes := make(chan string, 4)
	addr, srv := serveWebSocket(t, Options{Config: cfg, Auth: namedAuth{},
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Hooks: Hooks{OnConnect: func(c *Conn) error {
			remotes <- c.RemoteAddr().String()
			return nil
		}}})
	header := proxyHeader(t, "203.0.113.7:4711")
	d := ws.Dialer{TLSConfig: &tls.Config{RootCAs: ca.Pool()}, NetDial: func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err == nil {
			_, err = nc.Write(header)
		}
		return nc, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, _, _, err := d.Dial(ctx, "wss://"+addr+"/?session=secure")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := <-remotes; got != "203.0.113.7:4711" {
		t.Fatalf("the connection's address is %s; want the client's, 203.0.113.7:4711", got)
	}
	if c := srv.Registry().Get("secure"); c == nil || c.raw != nil {
		t.Fatalf("the TLS connection %v: want one read with a buffer", c)
	}
	if nc, err := dialProxied(addr, "plain", header); err == nil {
		nc.Close()
		t.Fatal("a client without TLS was let in")
	}
}
