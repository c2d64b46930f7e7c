package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// pushhttp's command line: --help on stdout for every command, listing
// each flag's PUSHHTTP_ variable; --version; and one line, exit status 2,
// for each mistake — serve with no authentication first among them.
func TestPushhttpCommandLine(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"key", "new", "--help"}, {"key", "rm", "-h"}, {"token", "--help"}} {
		r := runTool(t, nil, "pushhttp", args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage: pushhttp") {
			t.Fatalf("pushhttp %q: exit %d, stderr %q:\n%s", args, r.code, r.stderr, r.stdout)
		}
	}
	serve := runTool(t, nil, "pushhttp", "serve", "--help").stdout
	for _, w := range []string{"--listen=ADDR", "$PUSHHTTP_LISTEN", "--keys-file", "$PUSHHTTP_KEYS_FILE", "--jwt-secret-file", "--nats=URLS",
		"$PUSHHTTP_NATS,", "$NATS_URL", "--max-payload=1048576", "--timeout=10s", "--max-timeout=2m0s", "docs/http.md"} {
		if !strings.Contains(serve, w) {
			t.Errorf("pushhttp serve --help lacks %q:\n%s", w, serve)
		}
	}
	if r := runTool(t, nil, "pushhttp", "--version"); r.code != 0 || strings.TrimSpace(r.stdout) != version.Current().String() {
		t.Errorf("pushhttp --version: exit %d, %q", r.code, r.stdout)
	}
	keys := filepath.Join(t.TempDir(), "keys")
	for _, c := range []struct {
		what string
		env  []string
		args []string
		want []string
	}{
		{"no authentication", nil, []string{"serve"}, []string{"no authentication", "--keys-file", "--jwt-secret-file", "pushhttp serve"}},
		{"unknown flag", nil, []string{"serve", "--keys-file", keys, "--bogus"}, []string{"--bogus"}},
		{"no command", nil, nil, []string{"serve"}},
		{"a stray argument", nil, []string{"serve", "--keys-file", keys, "now"}, []string{"now"}},
		{"TLS half given", nil, []string{"serve", "--keys-file", keys, "--tls-cert", "c.pem"}, []string{"--tls-cert and --tls-key"}},
		{"a limit out of range", []string{"PUSHHTTP_MAX_BATCH=0"}, []string{"serve", "--keys-file", keys}, []string{"--max-batch must be positive"}},
		{"timeout over the longest", nil, []string{"serve", "--keys-file", keys, "--timeout", "5m"}, []string{"--timeout and --max-timeout do not fit"}},
		{"a bad log level", nil, []string{"serve", "--keys-file", keys, "--log-level", "loud"}, []string{"--log-level"}},
		{"key new without a name", nil, []string{"key", "new", "--keys-file", keys}, []string{"--name"}},
		{"key new with a bad name", nil, []string{"key", "new", "--keys-file", keys, "--name", "a b"}, []string{`--name "a b"`}},
		{"key new with a bad target", nil, []string{"key", "new", "--keys-file", keys, "--name", "ops", "--target", "everything"}, []string{`target "everything"`}},
		{"token without a lifetime", nil, []string{"token", "--jwt-secret-file", keys, "--name", "cron", "--ttl", "0s"}, []string{"--ttl"}},
	} {
		mustBeOneUsageLine(t, c.what, runTool(t, c.env, "pushhttp", c.args...), c.want...)
	}
	if _, err := os.Stat(keys); err == nil {
		t.Fatal("a refused key new made the keys file")
	}
}

// serve that cannot start says why on one line, with what to do, exit
// status 1: a keys file that is not there, a token secret too short, NATS
// out of reach. key rm of a key not there fails likewise.
func TestPushhttpStartFailures(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if r := runTool(t, nil, "pushhttp", "key", "new", "--name", "billing", "--keys-file", keys); r.code != 0 || !strings.HasPrefix(r.stdout, "pfk_") {
		t.Fatalf("key new: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	closed := fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"no keys file", []string{"serve", "--keys-file", filepath.Join(dir, "none")}, "pushhttp key new --keys-file"},
		{"a short secret", []string{"serve", "--jwt-secret-file", short}, "jwt secret of 9 bytes: use at least 32"},
		{"no NATS", []string{"serve", "--keys-file", keys, "--nats", closed, "--listen", "127.0.0.1:0"}, "(is the edge (make run) or NATS running?"},
		{"key rm of a key not there", []string{"key", "rm", "--keys-file", keys, "--name", "ops"}, "no key named ops"},
	} {
		r := runTool(t, nil, "pushhttp", c.args...)
		if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line saying %q", c.what, r.code, r.stdout, r.stderr, c.want)
		}
	}
}

// SIGTERM stops pushhttp serve gracefully: it takes no new connections,
// answers the request in flight (a push waiting for the client to confirm
// it, confirmed after the signal), writes the dead letter of an offline
// push it still held, and exits 0.
func TestPushhttpGracefulShutdown(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	r := runTool(t, nil, "pushhttp", "key", "new", "--name", "billing", "--keys-file", keys)
	if r.code != 0 {
		t.Fatalf("key new: %d %s", r.code, r.stderr)
	}
	key := strings.TrimSpace(r.stdout)
	p := start(t, dir, toolEnv(t), binary(t, "pushhttp"), "serve", "--keys-file", keys, "--nats", s.ClientURL(), "--listen", "127.0.0.1:0", "--log-format", "json")
	addr := serveAddr(t, p)
	alice := dial(t, n.ws(), "alice", client.Options{ManualReceipts: true})

	post := func(path, body string) (int, string, error) {
		req, _ := http.NewRequestWithContext(timeout(t), http.MethodPost, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := post("/v1/push/bob/high", "parked at shutdown"); err != nil || code != http.StatusNotFound {
		t.Fatalf("push to bob: %d %s %v", code, body, err)
	}
	type result struct {
		code int
		body string
		err  error
	}
	inFlight := make(chan result, 1)
	go func() {
		code, body, err := post("/v1/push/alice/high?ack=received&timeout=50s", "confirm me after the signal")
		inFlight <- result{code, body, err}
	}()
	f := recv(t, alice)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, `"msg":"stopping: no new requests`)
	waitFor(t, "the listener to close", func() bool {
		c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if err := alice.Confirm(f.ID); err != nil {
		t.Fatal(err)
	}
	res := <-inFlight
	if res.err != nil || res.code != http.StatusOK || !strings.Contains(res.body, `"status":"received"`) {
		t.Fatalf("the push in flight at SIGTERM: %d %s %v", res.code, res.body, res.err)
	}
	<-p.exited
	if p.err != nil || !strings.Contains(p.output(), `"msg":"pushhttp stopped"`) {
		t.Fatalf("pushhttp after SIGTERM: %v\n%s", p.err, p.output())
	}
	letters := deadLetters(t, s)
	if len(letters) != 1 || letters[0].Subject != "dlq.push.offline.bob.high" || string(letters[0].Data) != "parked at shutdown" {
		t.Fatalf("dead letters after the shutdown: %+v", letters)
	}
}
