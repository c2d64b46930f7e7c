package edge_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge"
)

// upgradeAs tries an upgrade to the node's WebSocket listener that names
// host in its Host header, with extra header lines, and returns the status
// and body.
func upgradeAs(t *testing.T, n *node, host, target string, extra ...string) (int, string) {
	t.Helper()
	req := upgradeRequest(n, target, extra...)
	req = strings.Replace(req, "Host: "+n.wsAddr+"\r\n", "Host: "+host+"\r\n", 1)
	return upgradeStatus(t, n, req)
}

// DNS rebinding: a page of evil.example whose name now resolves to
// 127.0.0.1 sends Host and Origin both evil.example:port, so it is its own
// origin. In development mode, where ?session= is all it needs, the node
// refuses any Host that is not a loopback name, with 403, counted as an
// origin rejection, before the session is taken from its holder.
func TestDevModeRefusesRebindingHost(t *testing.T) {
	var o edge.Options
	reg := withMetrics(t, &o)
	n := startNode(t, edge.DefaultConfig(), o) // development authentication
	_, port, _ := net.SplitHostPort(n.wsAddr)

	resp, _, br := rawUpgrade(t, n, []byte(upgradeRequest(n, "/?session=victimR")))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("victim: status %d; want 101", resp.StatusCode)
	}
	if _, err := ws.ReadFrame(br); err != nil { // welcome: the victim holds its session
		t.Fatalf("victim's welcome: %v", err)
	}
	victim := n.srv.Registry().Get("victimR")

	evil := "evil.example:" + port
	for _, extra := range [][]string{{"Origin: http://" + evil}, nil} {
		status, body := upgradeAs(t, n, evil, "/?session=victimR", extra...)
		if status != http.StatusForbidden || !strings.Contains(body, "host") {
			t.Errorf("Host %s, headers %q: status %d %q; want 403 naming the host", evil, extra, status, body)
		}
	}
	if got := n.srv.Registry().Get("victimR"); got != victim {
		t.Fatalf("the victim's session is held by %p; want the victim %p", got, victim)
	}
	if got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectOrigin); got != 2 {
		t.Fatalf("origin rejections %v; want 2", got)
	}

	for _, host := range []string{
		"127.0.0.1:" + port, "127.0.0.2:" + port, "[::1]:" + port, "localhost:" + port,
		"LocalHost:" + port, "localhost", "app.localhost:" + port,
	} {
		if status, body := upgradeAs(t, n, host, "/?session=dev", "Origin: http://"+host); status != http.StatusSwitchingProtocols {
			t.Errorf("Host %s: status %d %q; want 101", host, status, body)
		}
	}
	for _, host := range []string{"", "127.0.0.1.evil.example:" + port, "localhost.evil.example:" + port, "0.0.0.0:" + port, "[::ffff:7f00:1]x"} {
		if status, body := upgradeAs(t, n, host, "/?session=dev"); status != http.StatusForbidden {
			t.Errorf("Host %q: status %d %q; want 403", host, status, body)
		}
	}
}

// With tokens, the Host is not checked: a rebinding page has no token.
func TestTokenModeTakesAnyHost(t *testing.T) {
	auth := edge.AuthFunc(func(_ context.Context, cr edge.Credentials) (string, error) {
		if cr.Token != "good" {
			return "", errors.New("bad token")
		}
		return "s", nil
	})
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: auth})
	if status, body := upgradeAs(t, n, "edge.example.com", "/?token=good"); status != http.StatusSwitchingProtocols {
		t.Fatalf("status %d %q; want 101", status, body)
	}
}

// A request with two Origin headers is refused whichever comes last: the
// node does not guess which one the browser sent.
func TestDuplicateOriginRefused(t *testing.T) {
	var o edge.Options
	reg := withMetrics(t, &o)
	n := startNode(t, edge.DefaultConfig(), o)
	good, evil := "Origin: http://"+n.wsAddr, "Origin: http://evil.example"
	for _, pair := range [][]string{{evil, good}, {good, evil}, {good, good}} {
		status, body := upgradeAs(t, n, n.wsAddr, "/?session=d", pair...)
		if status != http.StatusForbidden || !strings.Contains(body, "Origin") {
			t.Errorf("headers %q: status %d %q; want 403 naming Origin", pair, status, body)
		}
	}
	if got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectOrigin); got != 3 {
		t.Fatalf("origin rejections %v; want 3", got)
	}
}

// A request with two Host headers is malformed (400), and cannot pair a
// loopback Host for one check with another name for the next.
func TestDuplicateHostRefused(t *testing.T) {
	var o edge.Options
	reg := withMetrics(t, &o)
	n := startNode(t, edge.DefaultConfig(), o)
	status, body := upgradeAs(t, n, n.wsAddr, "/?session=d", "Host: evil.example", "Origin: http://evil.example")
	if status != http.StatusBadRequest || !strings.Contains(body, "Host") {
		t.Fatalf("status %d %q; want 400 naming Host", status, body)
	}
	if got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectHandshake); got != 1 {
		t.Fatalf("handshake rejections %v; want 1", got)
	}
}
