package tests

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/lbtest"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The shipped HAProxy config's addresses here: each edge on a loopback
// address of its own with the ports the config names, the balancer's
// frontends on another; a client dials from yet another, so that the
// address an edge sees tells the client's from the balancer's.
const (
	lbHost     = "127.0.0.5"
	clientHost = "127.0.0.9"
)

var edgeHosts = [3]string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

// lbEdge starts edge i as the shipped config expects it, behind the
// balancer: PROXY protocol from loopback, tokens, debug logs (the connect
// line names the client's address).
func lbEdge(t *testing.T, s string, i int, extra ...string) *edgeProcess {
	h := edgeHosts[i]
	args := append([]string{"--nats-url", s, "--node", fmt.Sprintf("edge%d", i+1), "--jwt-secret-file", writeSecret(t),
		"--ws-listen", h + ":8080", "--tcp-listen", h + ":8081", "--admin-listen", h + ":9090",
		"--proxy-protocol", "127.0.0.0/8", "--log-level", "debug"}, extra...)
	return startEdgeProcess(t, t.TempDir(), args...)
}

// startHAProxy runs the shipped config in front of edgeHosts, its
// frontends on lbHost.
func startHAProxy(t *testing.T) {
	lbtest.Start(t, "../deployments/haproxy/haproxy.cfg", lbHost, edgeHosts)
}

// dialFrom connects through the balancer from clientHost, as session
// (a token for it), over WebSocket or TCP, and returns the client.
func dialFrom(t *testing.T, transport, session string) *client.Conn {
	t.Helper()
	addr := "ws://" + lbHost + ":8080/"
	if transport == "tcp" {
		addr = "tcp://" + lbHost + ":8081"
	}
	c, err := client.Dial(timeout(t), addr, client.Options{Token: mint(t, session),
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientHost)}})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, session, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Three edges behind the shipped HAProxy config: clients over both
// transports spread over all three (leastconn, checks on /readyz),
// pushes reach them through the balancer, and each edge sees the
// client's address (from the PROXY header), not the balancer's.
func TestHAProxyInFront(t *testing.T) {
	s := natstest.Server(t)
	var edges [3]*edgeProcess
	for i := range edges {
		edges[i] = lbEdge(t, s.ClientURL(), i)
	}
	startHAProxy(t)
	p := newProducer(t, natstest.Connect(t, s), "")
	nodes := map[string]int{}
	for i := range 12 {
		transport := []string{"websocket", "tcp"}[i%2]
		session := fmt.Sprintf("lb-%d", i)
		c := dialFrom(t, transport, session)
		nodes[c.Node()]++
		if _, err := p.Push(timeout(t), session, push.High, []byte("through the balancer")); err != nil {
			t.Fatal(err)
		}
		if f := recv(t, c); string(f.Payload) != "through the balancer" {
			t.Fatalf("%s got %q", session, f.Payload)
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("sessions by node %v; want all three edges used", nodes)
	}
	for i, e := range edges {
		remote := connectRemote(t, e, "lb-")
		if host, _, _ := net.SplitHostPort(remote); host != clientHost {
			t.Errorf("edge%d sees a client at %q; want the client's %s (from the PROXY header), not the balancer's", i+1, remote, clientHost)
		}
	}
}

// connectRemote is the remote address of the first "client connected"
// line of e's log for a session starting with prefix.
func connectRemote(t *testing.T, e *edgeProcess, prefix string) string {
	t.Helper()
	for _, l := range e.logs.all() {
		if session, _ := l["session"].(string); l["msg"] == "client connected" && strings.HasPrefix(session, prefix) {
			r, _ := l["remote"].(string)
			return r
		}
	}
	t.Fatalf("no client connected line for %s… in %v", prefix, e.logs.all())
	return ""
}

// A stopping edge behind the balancer is out of the rotation before it
// tells its clients to leave: during its drain delay the balancer's
// checks see /readyz 503 and send new clients to the others, so that the
// clients it then closes (shutdown) reconnect, through the balancer, to
// the other two, none refused on the way.
func TestHAProxyDrainsAStoppingEdge(t *testing.T) {
	s := natstest.Server(t)
	var edges [3]*edgeProcess
	for i := range edges {
		edges[i] = lbEdge(t, s.ClientURL(), i, "--drain-delay", "5s")
	}
	startHAProxy(t)
	var onFirst []*client.Conn
	for i := 0; len(onFirst) < 2; i++ {
		if i > 30 {
			t.Fatal("the balancer sent no client to edge1")
		}
		if c := dialFrom(t, "websocket", fmt.Sprintf("d-%d", i)); c.Node() == "edge1" {
			onFirst = append(onFirst, c)
		}
	}
	if err := edges[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range onFirst {
		if _, err := c.Recv(timeout(t)); !isClose(err, "shutdown") {
			t.Fatalf("%s on edge1 ended with %v; want shutdown", c.Session(), err)
		}
		again := dialFrom(t, "websocket", c.Session()) // as a client does on shutdown
		if again.Node() == "edge1" {
			t.Fatalf("%s reconnected to the stopping edge1", c.Session())
		}
	}
}
