package edge_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
)

// upgradeWithOrigin tries an upgrade with the given Origin header (none
// when empty) and returns the status and body.
func upgradeWithOrigin(t *testing.T, n *node, session, origin string) (int, string) {
	t.Helper()
	var extra []string
	if origin != "" {
		extra = append(extra, "Origin: "+origin)
	}
	return upgradeStatus(t, n, upgradeRequest(n, "/?session="+session, extra...))
}

// upgradeStatus sends the upgrade request req and returns the status and,
// for a refusal, the body, once the node has closed the socket (it has
// counted the refusal by then).
func upgradeStatus(t *testing.T, n *node, req string) (int, string) {
	t.Helper()
	resp, _, br := rawUpgrade(t, n, []byte(req))
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	body, _ := io.ReadAll(resp.Body)
	_, _ = io.Copy(io.Discard, br)
	return resp.StatusCode, string(body)
}

// By default a page may open a WebSocket only to its own origin, in
// development mode too (where ?session= is all a page needs); clients that
// send no Origin are not browsers and are let in. A refused origin gets 403
// with the reason and is counted.
func TestOriginSameOriginByDefault(t *testing.T) {
	var o edge.Options
	reg := withMetrics(t, &o)
	n := startNode(t, edge.DefaultConfig(), o) // development authentication
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + n.wsAddr, http.StatusSwitchingProtocols},
		{"HTTPS://" + strings.ToUpper(n.wsAddr), http.StatusSwitchingProtocols}, // scheme ignored, host case-insensitive
		{"http://evil.example", http.StatusForbidden},
		{"http://" + n.wsAddr + ".evil.example", http.StatusForbidden},
		{"http://127.0.0.1:1", http.StatusForbidden}, // another port is another origin
		{"null", http.StatusForbidden},
		{"not a url", http.StatusForbidden},
	} {
		status, body := upgradeWithOrigin(t, n, "o", tc.origin)
		if status != tc.want {
			t.Errorf("Origin %q: status %d %q; want %d", tc.origin, status, body, tc.want)
		}
		if status == http.StatusForbidden && !strings.Contains(body, "origin") {
			t.Errorf("Origin %q: body %q; want the reason", tc.origin, body)
		}
	}
	if got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectOrigin); got != 5 {
		t.Fatalf("origin rejections %v; want 5", got)
	}
	if got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectHandshake); got != 0 {
		t.Fatalf("handshake rejections %v; want 0 (they are origin rejections)", got)
	}
}

// WSAllowedOrigins lets listed origins in (scheme, host and port, case
// aside), and "*" any.
func TestOriginAllowList(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.WSAllowedOrigins = []string{"https://app.example.com", "http://localhost:3000"}
	n := startNode(t, cfg, edge.Options{})
	for origin, want := range map[string]int{
		"https://app.example.com":     http.StatusSwitchingProtocols,
		"HTTPS://App.Example.com":     http.StatusSwitchingProtocols,
		"http://localhost:3000":       http.StatusSwitchingProtocols,
		"http://" + n.wsAddr:          http.StatusSwitchingProtocols, // its own origin still
		"http://app.example.com":      http.StatusForbidden,          // another scheme
		"https://app.example.com:444": http.StatusForbidden,
		"http://localhost:3001":       http.StatusForbidden,
		"https://evil.example":        http.StatusForbidden,
	} {
		if status, body := upgradeWithOrigin(t, n, "a", origin); status != want {
			t.Errorf("Origin %q: status %d %q; want %d", origin, status, body, want)
		}
	}

	cfg.WSAllowedOrigins = []string{"*"}
	any := startNode(t, cfg, edge.Options{})
	if status, body := upgradeWithOrigin(t, any, "a", "http://evil.example"); status != http.StatusSwitchingProtocols {
		t.Fatalf("with *: status %d %q; want 101", status, body)
	}
}

func TestOriginConfigValidation(t *testing.T) {
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "https://", "ftp://x.example", "https://a.example?x=1", ""} {
		cfg := edge.DefaultConfig()
		cfg.WSAllowedOrigins = []string{bad}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "WSAllowedOrigins") {
			t.Errorf("origin %q: Validate() = %v; want an error naming WSAllowedOrigins", bad, err)
		}
	}
	cfg := edge.DefaultConfig()
	cfg.WSAllowedOrigins = []string{"*", "null", "https://a.example", "http://b.example:8080", "HTTPS://C.example"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("good origins: %v", err)
	}
}
