package tests

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/internal/testcert"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/lbtest"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// lbTLS is the PKI of a TLS deployment behind haproxy-tls.cfg: one CA
// signs the balancer's certificate (LB_CERT) and the edges' (EDGE_CA).
type lbTLS struct {
	ca     *testcert.CA
	lbCert string // the balancer's PEM, certificate and key in one file
	caFile string
}

// newLBTLS makes the CA and the balancer's certificate, for lbHost.
func newLBTLS(t *testing.T) *lbTLS {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Leaf(lbHost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pki := &lbTLS{ca: ca, lbCert: filepath.Join(dir, "lb.pem"), caFile: filepath.Join(dir, "ca.pem")}
	putFile(t, pki.lbCert, append(p.CertPEM, p.KeyPEM...))
	putFile(t, pki.caFile, ca.PEM)
	return pki
}

// edgeFlags is the TLS flags of edge i as haproxy-tls.cfg expects them:
// a certificate for its own address and the balancer's (framed-TCP
// clients dial the balancer and see the edge's), on its client listeners
// and its admin listener.
func (pki *lbTLS) edgeFlags(t *testing.T, i int) []string {
	t.Helper()
	p, err := pki.ca.Leaf(edgeHosts[i], lbHost)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := p.Write(t, t.TempDir())
	return []string{"--tls-cert", cert, "--tls-key", key, "--admin-tls"}
}

// start runs haproxy-tls.cfg in front of edgeHosts.
func (pki *lbTLS) start(t *testing.T) *lbtest.LB {
	return lbtest.Start(t, "../deployments/haproxy/haproxy-tls.cfg", lbHost, edgeHosts,
		"LB_CERT="+pki.lbCert, "EDGE_CA="+pki.caFile)
}

// dial connects through the balancer from clientHost, as session, to
// addr (wss:// or tls://), trusting the CA alone.
func (pki *lbTLS) dial(t *testing.T, addr, session string) *client.Conn {
	t.Helper()
	c, err := client.Dial(timeout(t), addr, client.Options{Token: mint(t, session),
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientHost)},
		TLSConfig: &tls.Config{RootCAs: pki.ca.Pool(), MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, session, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Three TLS edges behind the shipped haproxy-tls.cfg: a client over
// wss:// (TLS ended by the balancer, then TLS again to the edge) and one
// over tls:// (passed through) each receive a push, and the edges see
// the client's address from the PROXY header, not the balancer's.
func TestHAProxyTLSInFront(t *testing.T) {
	s := natstest.Server(t)
	pki := newLBTLS(t)
	var edges [3]*edgeProcess
	for i := range edges {
		edges[i] = lbEdge(t, s.ClientURL(), i, pki.edgeFlags(t, i)...)
	}
	pki.start(t)
	p := newProducer(t, natstest.Connect(t, s), "")
	for _, addr := range []string{"wss://" + lbHost + ":8443/", "tls://" + lbHost + ":8081"} {
		session := "lbtls-" + addr[:strings.Index(addr, ":")]
		c := pki.dial(t, addr, session)
		if _, err := p.Push(timeout(t), session, push.High, []byte("over TLS through the balancer")); err != nil {
			t.Fatal(err)
		}
		if f := recv(t, c); string(f.Payload) != "over TLS through the balancer" {
			t.Fatalf("%s got %q", session, f.Payload)
		}
		e := edges[nodeIndex(t, c.Node())]
		if host, _, _ := net.SplitHostPort(connectRemote(t, e, session)); host != clientHost {
			t.Errorf("%s: %s sees the client at %q; want the client's %s (from the PROXY header)", addr, c.Node(), host, clientHost)
		}
	}
}

// nodeIndex is the index in edgeHosts of the edge named node (edge1…).
func nodeIndex(t *testing.T, node string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(node, "edge%d", &i); err != nil || i < 1 || i > len(edgeHosts) {
		t.Fatalf("node %q: want edge1-%d", node, len(edgeHosts))
	}
	return i - 1
}

// wsLogLine is the WebSocket frontend's log line of a request, once the
// connection has ended (HAProxy logs a tunnel when it closes).
var wsLogLine = regexp.MustCompile(`(?m)^.* websocket~? edges-websocket/edge\d .*"GET .*$`)

// The balancer's log holds no client's token: through either shipped
// config, a WebSocket client that connected with ?token= is logged by
// its request's path alone, with its address, the server and the status.
func TestHAProxyLogsNoToken(t *testing.T) {
	s := natstest.Server(t)
	pki := newLBTLS(t)
	for _, cfg := range []struct{ name, addr string }{{"haproxy.cfg", "ws://" + lbHost + ":8080/"}, {"haproxy-tls.cfg", "wss://" + lbHost + ":8443/"}} {
		t.Run(cfg.name, func(t *testing.T) {
			var lb *lbtest.LB
			for i := range edgeHosts {
				var flags []string
				if cfg.name == "haproxy-tls.cfg" {
					flags = pki.edgeFlags(t, i)
				}
				lbEdge(t, s.ClientURL(), i, flags...)
			}
			if cfg.name == "haproxy-tls.cfg" {
				lb = pki.start(t)
			} else {
				lb = lbtest.Start(t, "../deployments/haproxy/haproxy.cfg", lbHost, edgeHosts)
			}
			_ = pki.dial(t, cfg.addr, "logged").Close()
			line := awaitLog(t, lb, wsLogLine)
			if strings.Contains(lb.Log(), "token=") {
				t.Fatal("the balancer logged the client's token (its log follows)")
			}
			for _, want := range []string{clientHost + ":", " 101 ", `"GET / HTTP/1.1"`} {
				if !strings.Contains(line, want) {
					t.Errorf("log line %q: want %q in it", line, want)
				}
			}
		})
	}
}

// awaitLog is the first match of re in lb's log, waited for.
func awaitLog(t *testing.T, lb *lbtest.LB, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindString(lb.Log()); m != "" {
			return m
		}
	}
	t.Fatalf("no log line like %s from the balancer:\n%s", re, lb.Log())
	return ""
}
