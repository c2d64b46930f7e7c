package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The edge binary with --nats-connect-retry starts while its NATS is not
// there, answers /readyz 503 naming NATS, and turns ready once NATS is up
// on that address; without the flag it exits at once, saying it could not
// connect.
func TestEdgeBinaryConnectRetry(t *testing.T) {
	port := natstest.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	listeners := []string{"--ws-listen", "", "--tcp-listen", "127.0.0.1:0"}
	out, code := exitOutput(t, "edge", append(listeners, "--admin-listen", "", "--nats-url", url)...)
	if code == 0 || !strings.Contains(out, "connect to nats") {
		t.Errorf("edge with no NATS and no --nats-connect-retry: exit %d\n%s\nwant it to fail at once, naming the connection", code, out)
	}

	p := startEdgeProcess(t, t.TempDir(), append(listeners, "--nats-url", url, "--nats-connect-retry")...)
	readyz := "http://" + p.addr("admin") + "/readyz"
	if code, body := getStatus(t, readyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS") {
		t.Errorf("/readyz with no NATS: %d %q; want 503 naming NATS", code, body)
	}
	opts := natstest.Options(t, "late")
	opts.Port = port
	natstest.StartWith(t, opts)
	waitFor(t, "/readyz 200 once NATS is up", func() bool { code, _ := getStatus(t, readyz); return code == http.StatusOK })
}
