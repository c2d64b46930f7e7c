package tests

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/internal/testcert"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// tlsNode is the edge binary serving TLS with a pair in dir that ca
// signed, for 127.0.0.1 and localhost.
type tlsNode struct {
	*edgeProcess
	ca             *testcert.CA
	cert, key, pem string // the pair's files and the CA's
	mod            time.Time
}

// startTLSEdge runs the edge binary on NATS server url with --tls-cert,
// --tls-key and --admin-tls, and a JWT secret.
func startTLSEdge(t *testing.T, url string) (*tlsNode, testcert.Pair) {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := &tlsNode{ca: ca, cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), pem: filepath.Join(dir, "ca.pem"), mod: time.Now()}
	putFile(t, n.pem, ca.PEM)
	p := n.newPair(t)
	n.edgeProcess = startEdgeProcess(t, dir, "--nats-url", url, "--node", "T", "--ws-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0",
		"--jwt-secret-file", writeSecret(t), "--tls-cert", n.cert, "--tls-key", n.key, "--admin-tls")
	if n.started["tls"] != true {
		t.Fatalf("start line %v: want tls true", n.started)
	}
	return n, p
}

func putFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// newPair makes a pair and writes it over the node's files, each with a
// later modification time than before (the file system's clock is too
// coarse to tell two writes a moment apart).
func (n *tlsNode) newPair(t *testing.T) testcert.Pair {
	t.Helper()
	p, err := n.ca.Leaf("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	n.write(t, n.cert, p.CertPEM)
	n.write(t, n.key, p.KeyPEM)
	return p
}

func (n *tlsNode) write(t *testing.T, name string, b []byte) {
	t.Helper()
	putFile(t, name, b)
	n.mod = n.mod.Add(time.Second)
	if err := os.Chtimes(name, n.mod, n.mod); err != nil {
		t.Fatal(err)
	}
}

// trust is a client configuration trusting the node's CA only.
func (n *tlsNode) trust() *tls.Config {
	return &tls.Config{RootCAs: n.ca.Pool(), MinVersion: tls.VersionTLS12}
}

// serial is the serial number of the certificate a new TLS connection to
// the framed-TCP listener sees.
func (n *tlsNode) serial(t *testing.T) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", n.addr("tcp"), n.trust())
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// scrape reads the node's /metrics over HTTPS.
func (n *tlsNode) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: n.trust()}}
	_, mfs := scrapeWith(t, hc, fmt.Sprintf("https://%s/metrics", n.addr("admin")))
	return mfs
}

// The edge binary with --tls-cert and --tls-key serves wss:// and tls://
// to a client that trusts its CA, pushes included, and fails the handshake
// of one that does not. A pair replaced on disk is served to the next
// connection while the connections made before stay up; a broken one
// keeps the last good pair and counts an error.
func TestTLSListeners(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	n, p1 := startTLSEdge(t, s.ClientURL())
	addrs := map[string]string{"wss": "wss://" + n.addr("websocket") + "/", "tls": "tls://" + n.addr("tcp")}
	conns := map[string]*client.Conn{}
	for name, addr := range addrs {
		conns[name] = dial(t, addr, "over-"+name, client.Options{TLSConfig: n.trust()})
		request(t, nc, pushMsg("over-"+name, "high", name+"-1", "hello"))
		if f := recv(t, conns[name]); f.ID != name+"-1" || string(f.Payload) != "hello" {
			t.Fatalf("%s: got %s %q", addr, f.ID, f.Payload)
		}
		_, err := client.Dial(timeout(t), addr, client.Options{Token: mint(t, "untrusting")})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("%s without the CA: %v; want an unknown authority", addr, err)
		}
	}
	if got := n.serial(t); got.Cmp(p1.Serial) != 0 {
		t.Fatalf("serial %s; want the first pair's %s", got, p1.Serial)
	}

	p2 := n.newPair(t)
	waitFor(t, "the new pair served", func() bool { return n.serial(t).Cmp(p2.Serial) == 0 })
	waitFor(t, "the reload logged", func() bool { return n.logged("TLS certificate reloaded") })
	for name, c := range conns {
		request(t, nc, pushMsg("over-"+name, "high", name+"-2", "still here"))
		if f := recv(t, c); f.ID != name+"-2" {
			t.Fatalf("%s after the reload: got %s", name, f.ID)
		}
	}
	n.checkBrokenPair(t, nc, addrs["tls"], p2)
}

// checkBrokenPair writes a broken certificate over a node serving p2: it
// goes on serving p2, counts and logs the error, and takes clients.
func (n *tlsNode) checkBrokenPair(t *testing.T, nc *nats.Conn, addr string, p2 testcert.Pair) {
	t.Helper()
	errorsBefore := value(t, n.scrape(t), "pushfabric_tls_reload_errors_total") // replacing the key after the certificate may count one
	n.write(t, n.cert, []byte("not a certificate"))
	waitFor(t, "the broken pair counted", func() bool {
		return value(t, n.scrape(t), "pushfabric_tls_reload_errors_total") > errorsBefore
	})
	if got := n.serial(t); got.Cmp(p2.Serial) != 0 {
		t.Fatalf("after a broken pair: serial %s; want the last good %s", got, p2.Serial)
	}
	if exp := value(t, n.scrape(t), "pushfabric_tls_cert_expiry_timestamp_seconds"); exp != float64(p2.NotAfter.Unix()) {
		t.Fatalf("expiry %v; want the last good pair's %d", exp, p2.NotAfter.Unix())
	}
	waitFor(t, "the broken pair logged", func() bool {
		return n.logged("TLS certificate files changed but do not load; serving the last good pair")
	})
	c := dial(t, addr, "after-broken", client.Options{TLSConfig: n.trust()})
	request(t, nc, pushMsg("after-broken", "low", "b", "x"))
	if f := recv(t, c); f.ID != "b" {
		t.Fatalf("after a broken pair: got %s", f.ID)
	}
}

// logged says whether the process logged msg.
func (p *edgeProcess) logged(msg string) bool {
	for _, l := range p.logs.all() {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

// pushctl listen --addr wss://… --ca FILE receives a push from an edge
// serving TLS.
func TestPushctlListenTLS(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	n, _ := startTLSEdge(t, s.ClientURL())
	stdout, stderr, _ := startPushctl(t, "listen", "--addr", "wss://"+n.addr("websocket")+"/", "--ca", n.pem,
		"--secret-file", writeSecret(t), "secure")
	stderr.wait(t, `listening as session "secure"`)
	request(t, nc, pushMsg("secure", "high", "s1", "over wss"))
	stdout.wait(t, "s1: over wss")
}
