package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/cmd/pushhttp/httpapi"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// rawHTTP sends req as written on a new connection to addr and returns
// the status line and whether the body was JSON.
func rawHTTP(t *testing.T, addr, req string) (string, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status, string(b)
}

// What an outsider tries on pushhttp's routes, each refused clearly, as
// JSON, and none of it pushed: paths with more or fewer segments, doubled
// slashes, dots and slashes escaped into a session's name, methods other
// than POST, repeated and odd query parameters, timeouts huge, negative
// or not durations, a Push-Id given twice, odd Authorization headers,
// tokens signed otherwise than HS256 or with claims out of shape.
func TestHTTPOutsiderRefused(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	f := startHTTP(t, s, httpSecret, nil)
	got := &frames{got: map[string][]client.Frame{}, to: map[string]string{}}
	dial(t, n.tcp(), "alice", client.Options{OnPush: got.on("alice")})
	key := f.keys["billing"]
	addr := strings.TrimPrefix(f.url, "http://")
	for _, c := range []struct{ what, target, want string }{
		{"a segment more", "/v1/push/alice/high/extra", "404"},
		{"a segment less", "/v1/push/alice", "404"},
		{"doubled slashes", "/v1/push//alice/high", "404"},
		{"a dot segment", "/v1/push/./alice/high", "404"},
		{"dots escaped", "/v1/push/%2e%2e/high", "404"},
		{"a trailing slash", "/v1/push/alice/high/", "404"},
		{"a slash escaped", "/v1/push/al%2Fice/high", "400"},
		{"a dot escaped", "/v1/push/a%2Eb/high", "400"},
		{"a NUL escaped", "/v1/push/al%00ice/high", "400"},
		{"a space escaped", "/v1/push/al%20ice/high", "400"},
		{"all as a session with a segment more", "/v1/push/all/high/x", "404"},
		{"ack twice", "/v1/push/alice/high?ack=enqueued&ack=written", "400"},
		{"timeout twice", "/v1/push/alice/high?timeout=1s&timeout=2s", "400"},
		{"a negative timeout", "/v1/push/alice/high?timeout=-1s", "400"},
		{"a zero timeout", "/v1/push/alice/high?timeout=0", "400"},
		{"a huge timeout", "/v1/push/alice/high?timeout=9999999999h", "400"},
		{"a timeout not a duration", "/v1/push/alice/high?timeout=1e9", "400"},
		{"an empty parameter", "/v1/push/alice/high?=", "400"},
		{"a parameter not escaped right", "/v1/push/alice/high?ack=%zz", "400"},
		{"a parameter after a semicolon", "/v1/push/alice/high?ack=received;timeout=1s", "400"},
		{"a timeout not escaped right", "/v1/push/alice/high?ack=received&timeout=%zz", "400"},
	} {
		status, body := rawHTTP(t, addr, "POST "+c.target+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+
			"\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused")
		if !strings.HasPrefix(status, c.want) || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s (%s): %s %q; want %s and a JSON error", c.what, c.target, status, body, c.want)
		}
	}
	for _, method := range []string{"GET", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		status, body := rawHTTP(t, addr, method+" /v1/push/alice/high HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+
			"\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused")
		if !strings.HasPrefix(status, "405") || !strings.Contains(body, "only POST") {
			t.Errorf("%s: %s %q; want 405", method, status, body)
		}
	}
	exp := time.Now().Add(time.Hour).Unix()
	good := jwt.MapClaims{"sub": "cron", "aud": httpapi.DefaultAudience, "exp": exp, "scope": "push"}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, good).SignedString(httpSecret)
	for _, c := range []struct{ what, auth, want string }{
		{"alg none", "Bearer " + none, "401"},
		{"HS512", "Bearer " + hs512, "401"},
		{"no exp", "Bearer " + signHS256(t, httpSecret, with("exp", nil)), "401"},
		{"exp a string", "Bearer " + signHS256(t, httpSecret, with("exp", "tomorrow")), "401"},
		{"not valid yet", "Bearer " + signHS256(t, httpSecret, with("nbf", time.Now().Add(time.Hour).Unix())), "401"},
		{"no sub", "Bearer " + signHS256(t, httpSecret, with("sub", nil)), "401"},
		{"a sub no name", "Bearer " + signHS256(t, httpSecret, with("sub", "a.b")), "401"},
		{"scope a list", "Bearer " + signHS256(t, httpSecret, with("scope", []string{"push"})), "401"},
		{"scope pushy", "Bearer " + signHS256(t, httpSecret, with("scope", "pushy nopush")), "403"},
		{"targets a string", "Bearer " + signHS256(t, httpSecret, with("targets", "all")), "401"},
		{"targets bad", "Bearer " + signHS256(t, httpSecret, with("targets", []string{"everything"})), "401"},
		{"targets empty", "Bearer " + signHS256(t, httpSecret, with("targets", []string{})), "401"},
		{"another audience", "Bearer " + signHS256(t, httpSecret, with("aud", "edge")), "401"},
		{"Basic", "Basic " + key, "401"},
		{"Bearer and nothing", "Bearer ", "401"},
		{"a key cut short", "Bearer " + key[:len(key)-1], "401"},
		{"a key and more", "Bearer " + key + "x", "401"},
		{"two credentials", "Bearer " + key + " " + key, "401"},
	} {
		status, body := rawHTTP(t, addr, "POST /v1/push/alice/high HTTP/1.1\r\nHost: x\r\nAuthorization: "+c.auth+
			"\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused")
		if !strings.HasPrefix(status, c.want) || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: %s %q; want %s", c.what, status, body, c.want)
		}
	}
	status, body := rawHTTP(t, addr, "POST /v1/push/alice/high HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+
		"\r\nPush-Id: one\r\nPush-Id: two\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused")
	if !strings.HasPrefix(status, "400") || !strings.Contains(body, "given 2 times") {
		t.Errorf("Push-Id twice: %s %q; want 400", status, body)
	}
	latin1 := `[{"session":"alice","payload":"caf` + "\xe9" + `"}]`
	status, body = rawHTTP(t, addr, "POST /v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+
		fmt.Sprintf("\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(latin1))+latin1)
	if !strings.HasPrefix(status, "400") || !strings.Contains(body, "not UTF-8") {
		t.Errorf("a batch not UTF-8: %s %q; want 400", status, body)
	}
	expectCode(t, "the last push", f.post(t, "/v1/push/alice/high", "billing", "the only one", "Push-Id", "only"), http.StatusAccepted)
	waitFor(t, "the last push delivered", func() bool { return got.count() > 0 })
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.got) != 1 || len(got.got["only"]) != 1 {
		t.Errorf("alice received %v; want the last push only", got.to)
	}
}

// servePushhttp runs the pushhttp binary on s with a keys file of one
// key, billing, and returns it, its address and the key.
func servePushhttp(t *testing.T, natsURL string, args ...string) (*process, string, string) {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	r := runTool(t, nil, "pushhttp", "key", "new", "--name", "billing", "--keys-file", keys)
	if r.code != 0 {
		t.Fatalf("key new: %d %s", r.code, r.stderr)
	}
	p := start(t, dir, toolEnv(t), binary(t, "pushhttp"), append([]string{"serve", "--keys-file", keys, "--nats", natsURL,
		"--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	return p, serveAddr(t, p), strings.TrimSpace(r.stdout)
}

// A client that sends a request's headers and stops (slowloris) is cut
// off by pushhttp within its header timeout; one that sends the headers
// of a push and never its body, within its read timeout; meanwhile others
// are served.
func TestPushhttpSlowClients(t *testing.T) {
	s := natstest.Server(t)
	startEdge(t, edgeConfig(t, s, "n1"))
	_, addr, key := servePushhttp(t, s.ClientURL())
	cutOff := func(what, partial string, within time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, partial); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		_ = c.SetReadDeadline(begin.Add(within + 30*time.Second))
		_, err = io.ReadAll(c) // the server's answer, if any, then its close
		if took := time.Since(begin); err != nil || took > within+5*time.Second {
			t.Errorf("%s: connection still open after %v (%v); want it closed within %v", what, took, err, within)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cutOff("headers never ended", "POST /v1/push/alice/high HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+"\r\n", 10*time.Second)
	}()
	status, _ := rawHTTP(t, addr, "POST /v1/push/nobody/high HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+
		"\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
	if !strings.HasPrefix(status, "404") {
		t.Errorf("a push while a slow client waits: %s; want 404 (parked)", status)
	}
	<-done
}

// A keys file that others may write lets anyone on the host add a key:
// serve refuses it, saying so, and a running pushhttp keeps the keys it
// had when the file becomes so. A keys file of garbage is refused with
// its line.
func TestPushhttpKeysFileModes(t *testing.T) {
	s := natstest.Server(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	r := runTool(t, nil, "pushhttp", "key", "new", "--name", "billing", "--keys-file", keys)
	if r.code != 0 {
		t.Fatalf("key new: %d %s", r.code, r.stderr)
	}
	if err := os.Chmod(keys, 0o666); err != nil {
		t.Fatal(err)
	}
	r = runTool(t, nil, "pushhttp", "serve", "--keys-file", keys, "--nats", s.ClientURL(), "--listen", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "writable by") {
		t.Errorf("serve with a keys file anyone may write: exit %d, %q; want 1, saying so", r.code, r.stderr)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("# keys\n\x00\xff\xfe not a key line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runTool(t, nil, "pushhttp", "serve", "--keys-file", garbage, "--nats", s.ClientURL(), "--listen", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "line 2") {
		t.Errorf("serve with a keys file of garbage: exit %d, %q; want 1, naming line 2", r.code, r.stderr)
	}
}

// SIGKILL in the middle of a request: the caller sees the connection end,
// never an answer it could take for the push's outcome. SIGTERM while a
// batch waits for its pushes to be written: the batch is answered in
// full, the offline one parked, and pushhttp exits 0.
func TestPushhttpKilled(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.Rate, cfg.Edge.Burst = 20, 1
	n := startEdge(t, cfg)
	alice := dial(t, n.tcp(), "alice", client.Options{ManualReceipts: true})

	p, addr, key := servePushhttp(t, s.ClientURL())
	answered := make(chan string, 1)
	go func() {
		status, body, err := postRaw(addr, key, "/v1/push/alice/high?ack=received&timeout=50s", "never confirmed")
		answered <- fmt.Sprint(status, body, err)
	}()
	recv(t, alice)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if a := <-answered; !strings.Contains(a, "EOF") && !strings.Contains(a, "reset") {
		t.Errorf("the request in flight at SIGKILL: %s; want the connection ended, no answer", a)
	}

	p, addr, key = servePushhttp(t, s.ClientURL(), "--shutdown-timeout", "50s")
	var batch strings.Builder
	batch.WriteString(`[{"session":"carol","payload":"parked","headers":{"Push-Id":"c0"}}`)
	for i := range 20 {
		fmt.Fprintf(&batch, `,{"session":"alice","payload":"%d","headers":{"Push-Id":"a%d"}}`, i, i)
	}
	batch.WriteString("]")
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		status, body, err := postRaw(addr, key, "/v1/push?ack=written&timeout=40s", batch.String())
		res <- result{status, body, err}
	}()
	recv(t, alice)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range 19 {
		recv(t, alice)
	}
	r := <-res
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `"counts":{"enqueued":0,"written":20,"received":0,"dead":1,"failed":0}`) {
		t.Errorf("the batch in flight at SIGTERM: %d %s %v; want every push answered", r.status, r.body, r.err)
	}
	<-p.exited
	if p.err != nil {
		t.Errorf("pushhttp after SIGTERM: %v\n%s", p.err, p.output())
	}
	waitFor(t, "carol's dead letter", func() bool {
		for _, dl := range deadLetters(t, s) {
			if dl.Subject == "dlq.push.offline.carol.high" && string(dl.Data) == "parked" {
				return true
			}
		}
		return false
	})
}

// postRaw posts body to path at addr with key, on a connection of its own.
func postRaw(addr, key, path, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: testTimeout}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
