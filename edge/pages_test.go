package edge_test

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
)

// plainGet is a GET for target on the node's WebSocket listener, not an
// upgrade, with Host host and extra header lines.
func plainGet(target, host string, extra ...string) []byte {
	return []byte("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Join(append(extra, ""), "\r\n") + "\r\n")
}

// pagesNode is a node (development mode) whose Pages serve /demo/.
func pagesNode(t *testing.T, o edge.Options) (*node, *edge.Metrics) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "the page at "+r.URL.Path)
	})
	o.Pages = mux
	reg := withMetrics(t, &o)
	return startNode(t, edge.DefaultConfig(), o), reg
}

// Options.Pages answers a plain GET for its paths on the WebSocket
// listener, with Connection: close, and only that: a plain GET elsewhere,
// any other method, a GET naming a host that is not loopback in
// development mode, and a request over the size limit are refused as
// before (400, 405, 431), upgrades go on as before on any path (an Origin
// still checked), and a page served is no rejection.
func TestPages(t *testing.T) {
	n, reg := pagesNode(t, edge.Options{})
	resp, nc, br := rawUpgrade(t, n, plainGet("/demo/x.html", n.wsAddr))
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "the page at /demo/x.html" || !resp.Close {
		t.Fatalf("GET /demo/x.html: %d %q close %v (%v); want 200, the page, Connection: close", resp.StatusCode, body, resp.Close, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the page: %v; want the socket closed", err)
	}
	_ = nc.Close()
	if resp, _, _ := rawUpgrade(t, n, plainGet("/demo", n.wsAddr)); resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/demo/" {
		t.Fatalf("GET /demo: %d to %q; want 307 to /demo/", resp.StatusCode, resp.Header.Get("Location"))
	}
	refused := map[string]struct {
		req    []byte
		status int
	}{
		"GET /":                      {plainGet("/", n.wsAddr), http.StatusBadRequest},
		"GET /elsewhere":             {plainGet("/elsewhere?session=x", n.wsAddr), http.StatusBadRequest},
		"GET /demo/ by another name": {plainGet("/demo/", "rebound.example.com"), http.StatusBadRequest},
		"GET /demo/ with two Hosts":  {plainGet("/demo/", n.wsAddr, "Host: other"), http.StatusBadRequest},
		"HEAD /demo/":                {[]byte("HEAD /demo/ HTTP/1.1\r\nHost: " + n.wsAddr + "\r\n\r\n"), http.StatusMethodNotAllowed},
		"POST /demo/":                {[]byte("POST /demo/ HTTP/1.1\r\nHost: " + n.wsAddr + "\r\nContent-Length: 0\r\n\r\n"), http.StatusMethodNotAllowed},
	}
	for name, r := range refused {
		if resp, _, _ := rawUpgrade(t, n, r.req); resp.StatusCode != r.status {
			t.Errorf("%s: status %d; want %d", name, resp.StatusCode, r.status)
		}
	}
	if resp, _, _ := rawUpgrade(t, n, plainGet("/demo/", n.wsAddr, "X-Pad: "+strings.Repeat("p", edge.DefaultConfig().MaxHandshakeSize))); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET /demo/ over the size limit: status %d; want 431", resp.StatusCode)
	}
	if resp, _, _ := rawUpgrade(t, n, []byte(upgradeRequest(n, "/demo/?session=up"))); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("an upgrade on /demo/: status %d; want 101", resp.StatusCode)
	}
	if resp, _, _ := rawUpgrade(t, n, []byte(upgradeRequest(n, "/demo/?session=o", "Origin: http://other.example"))); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an upgrade on /demo/ from another origin: status %d; want 403", resp.StatusCode)
	}
	// A refusal is counted once its answer is written: the last may be a
	// moment behind the answer the test read.
	want := float64(len(refused) + 1)
	deadline := time.Now().Add(testTimeout)
	got := counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectHandshake)
	for ; got < want && time.Now().Before(deadline); got = counter(t, reg, "pushfabric_rejections_total", "reason", edge.RejectHandshake) {
		runtime.Gosched()
	}
	if got != want {
		t.Errorf("handshake rejections %v; want %v (the pages served are none)", got, want)
	}
}

// Without Options.Pages a plain GET is refused, whatever its path.
func TestNoPages(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	if resp, _, _ := rawUpgrade(t, n, plainGet("/demo/", n.wsAddr)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /demo/ with no pages: status %d; want 400", resp.StatusCode)
	}
}
