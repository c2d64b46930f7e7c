package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pushfabric/pushfabric/cmd/pushhttp/httpapi"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// httpSecret is pushhttp's own token secret in these tests (the edge's
// is secret).
var httpSecret = []byte("pushhttp's producer-token secret, not the edge's")

// httpFront is pushhttp's handler on a real socket, pushing through a
// producer on its own NATS connection: keys by name, and the connection
// (its server going away makes NATS unavailable).
type httpFront struct {
	url    string
	keys   map[string]string
	nc     *nats.Conn
	client *http.Client
}

// frontKeys are the keys every front holds: billing (every session and
// group), ops (broadcast too) and narrow (sessions billing-* only).
var frontKeys = map[string][]string{"billing": nil, "ops": {"session:*", "group:*", "all"}, "narrow": {"session:billing-*"}}

// startHTTP serves pushhttp's routes for s's edges at a loopback
// address, with the keys of frontKeys and tokens signed with jwtSecret;
// cfg, if not nil, changes the handler's limits first.
func startHTTP(t *testing.T, s *server.Server, jwtSecret []byte, cfg func(*httpapi.Config)) *httpFront {
	t.Helper()
	return startHTTPWith(t, s, jwtSecret, cfg, producer.Options{Name: "pushhttp"})
}

// startHTTPWith is startHTTP with a producer of po.
func startHTTPWith(t *testing.T, s *server.Server, jwtSecret []byte, cfg func(*httpapi.Config), po producer.Options) *httpFront {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	f := &httpFront{keys: map[string]string{}, nc: natstest.Connect(t, s)}
	for name, targets := range frontKeys {
		ts, err := httpapi.ParseTargets(targets)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[name] = httpapi.NewKey()
		if err := httpapi.AppendKey(path, httpapi.KeyEntry{Name: name, Hash: httpapi.HashKey(f.keys[name]), Targets: ts}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := httpapi.OpenKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := httpapi.NewJWTVerifier(jwtSecret, httpapi.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	c := httpapi.DefaultConfig()
	if cfg != nil {
		cfg(&c)
	}
	p, err := producer.New(f.nc, po)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	h, err := httpapi.New(c, f.nc, p, httpapi.Auth{Keys: keys, JWT: v}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // 127.0.0.1:0
	tr := &http.Transport{}
	f.url, f.client = srv.URL, &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return f
}

// answer is any of pushhttp's JSON answers, with its status and headers.
type answer struct {
	code   int
	header http.Header
	raw    string

	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Node       string `json:"node"`
	ID         string `json:"id"`
	DeadLetter string `json:"dead_letter"`
	Members    int    `json:"members"`
	Offline    bool   `json:"offline"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	Index      *int   `json:"index"`
	Results    []struct {
		Status, Reason, ID string
		DeadLetter         string `json:"dead_letter"`
		Code               int
		Error              string
	} `json:"results"`
	Counts map[string]int `json:"counts"`
}

// do sends method path with body, authorised as cred ("" none; a key's
// name for its key), with the headers of kv (key, value, …).
func (f *httpFront) do(t *testing.T, method, path, cred string, body []byte, kv ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(timeout(t), method, f.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key, ok := f.keys[cred]; ok {
		cred = key
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &a); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d %q is no JSON answer (%v)", method, path, resp.StatusCode, b, err)
	}
	return a
}

func (f *httpFront) post(t *testing.T, path, cred, body string, kv ...string) answer {
	t.Helper()
	return f.do(t, http.MethodPost, path, cred, []byte(body), kv...)
}

func expectCode(t *testing.T, what string, a answer, code int, inBody ...string) {
	t.Helper()
	if a.code != code {
		t.Fatalf("%s: %d %s; want %d", what, a.code, a.raw, code)
	}
	for _, w := range inBody {
		if !strings.Contains(a.raw, w) {
			t.Fatalf("%s: %s lacks %q", what, a.raw, w)
		}
	}
}

// Every route, as a webhook would call it: a push to a session is
// acknowledged as the producer client's (202 enqueued, 200 written or
// received) and reaches the client with the headers the request mapped;
// a group push reaches each member, a broadcast every connection (with a
// key that may broadcast), and a batch answers each push in order (a
// push's own Push-Ack over the query's ack).
func TestHTTPPushRoutes(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	f := startHTTP(t, s, httpSecret, nil)
	alice := dial(t, n.ws(), "alice", client.Options{})
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	a := f.post(t, "/v1/push/alice/high", "billing", "hello over HTTP", "Push-Id", "h-1", "Content-Type", "text/plain", "traceparent", tp)
	expectCode(t, "push to alice", a, http.StatusAccepted)
	if a.Status != "enqueued" || a.Node != "n1" || a.ID != "h-1" {
		t.Fatalf("push to alice: %s", a.raw)
	}
	if fr := recv(t, alice); fr.ID != "h-1" || string(fr.Payload) != "hello over HTTP" || fr.ContentType != "text/plain" {
		t.Fatalf("alice got %s %q [%s]", fr.ID, fr.Payload, fr.ContentType)
	}
	// curl's default content type is none.
	expectCode(t, "a form", f.post(t, "/v1/push/alice/low?ack=written", "billing", "a=b", "Content-Type", "application/x-www-form-urlencoded"),
		http.StatusOK, `"status":"written"`)
	if fr := recv(t, alice); string(fr.Payload) != "a=b" || fr.ContentType != "" {
		t.Fatalf("alice got %q [%s]", fr.Payload, fr.ContentType)
	}
	got := make(chan client.Frame, 1)
	go func() { // the client confirms a push a few milliseconds after Recv returned it
		fr, _ := alice.Recv(timeout(t))
		got <- fr
	}()
	expectCode(t, "received", f.post(t, "/v1/push/alice/high?ack=received&timeout=30s", "billing", "confirm me"), http.StatusOK, `"status":"received"`)
	if fr := <-got; string(fr.Payload) != "confirm me" || !fr.WantsReceipt {
		t.Fatalf("alice got %q (receipt %v)", fr.Payload, fr.WantsReceipt)
	}
	expectCode(t, "a token", f.post(t, "/v1/push/alice/high", mintProducer(t, httpSecret, nil), "by token"), http.StatusAccepted)
	recv(t, alice)

	laptop, phone := dialGroups(t, n.ws(), "dana-laptop", "user-dana"), dialGroups(t, n.ws(), "dana-phone", "user-dana")
	waitForInterest(t, []*server.Server{s}, "push.group.user-dana.high")
	a = f.post(t, "/v1/push/group/user-dana/high", "billing", "every device")
	expectCode(t, "group push", a, http.StatusAccepted)
	if a.Members != 2 {
		t.Fatalf("group push: %s; want 2 members", a.raw)
	}
	for _, c := range []*client.Conn{laptop, phone} {
		if fr := recv(t, c); string(fr.Payload) != "every device" || fr.ID != a.ID {
			t.Fatalf("%s got %s %q", c.Session(), fr.ID, fr.Payload)
		}
	}
	expectCode(t, "broadcast by billing", f.post(t, "/v1/push/all/low", "billing", "to all"), http.StatusForbidden, "may not broadcast")
	a = f.post(t, "/v1/push/all/low", "ops", "to all")
	expectCode(t, "broadcast", a, http.StatusAccepted)
	if a.Members != 3 {
		t.Fatalf("broadcast: %s; want 3 members", a.raw)
	}
	for _, c := range []*client.Conn{alice, laptop, phone} {
		if fr := recv(t, c); string(fr.Payload) != "to all" {
			t.Fatalf("%s got %q", c.Session(), fr.Payload)
		}
	}

	a = f.post(t, "/v1/push?ack=written", "billing", `[{"session":"alice","payload":"one"},
		{"session":"dana-phone","priority":"low","payload_base64":"AAEC","headers":{"Push-Id":"b-2","Content-Type":"application/octet-stream","Push-Ack":"enqueued"}},
		{"session":"nobody","payload":"three"}]`)
	expectCode(t, "batch", a, http.StatusOK)
	if len(a.Results) != 3 || a.Results[0].Status != "written" || a.Results[0].Code != 200 || a.Results[1].ID != "b-2" || a.Results[1].Status != "enqueued" || a.Results[1].Code != 202 ||
		a.Results[2].Status != "dead" || a.Results[2].Reason != "offline" || a.Results[2].Code != 404 || a.Results[2].DeadLetter != "dlq.push.offline.nobody.high" ||
		a.Counts["written"] != 1 || a.Counts["enqueued"] != 1 || a.Counts["dead"] != 1 || a.Counts["failed"] != 0 {
		t.Fatalf("batch: %s", a.raw)
	}
	if fr := recv(t, alice); string(fr.Payload) != "one" || fr.ID != a.Results[0].ID {
		t.Fatalf("alice got %s %q from the batch", fr.ID, fr.Payload)
	}
	if fr := recv(t, phone); !bytes.Equal(fr.Payload, []byte{0, 1, 2}) || fr.ContentType != "application/octet-stream" {
		t.Fatalf("dana-phone got %q [%s] from the batch", fr.Payload, fr.ContentType)
	}
	expectCode(t, "health", f.do(t, http.MethodGet, "/healthz", "", nil), http.StatusOK, `"status":"ok"`)
}

// mintProducer is a producer token of pushhttp's, signed with key.
func mintProducer(t *testing.T, key []byte, targets []string) string {
	t.Helper()
	tok, err := httpapi.MintToken(key, "cron", time.Hour, httpapi.DefaultAudience, targets)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A push for a session no node holds is parked by pushhttp's producer: 404,
// the answer names the dead letter, and the letter is in PUSH_DLQ with the
// push's id and payload; a group with no member online likewise.
func TestHTTPOfflineParked(t *testing.T) {
	s := natstest.Server(t)
	startEdge(t, edgeConfig(t, s, "n1"))
	f := startHTTP(t, s, httpSecret, nil)
	a := f.post(t, "/v1/push/bob/low", "billing", "are you there?", "Push-Id", "off-1")
	expectCode(t, "push to bob", a, http.StatusNotFound, `"status":"dead"`, `"reason":"offline"`, `"node":"pushhttp"`)
	if a.DeadLetter != "dlq.push.offline.bob.low" || a.ID != "off-1" {
		t.Fatalf("push to bob: %s", a.raw)
	}
	g := f.post(t, "/v1/push/group/empty-room/high", "billing", "anyone?")
	expectCode(t, "group push", g, http.StatusNotFound, `"offline":true`, `"dead_letter":"dlq.push.offline.group.empty-room.high"`)
	var letters []deadLetter
	waitFor(t, "both dead letters", func() bool { letters = deadLetters(t, s); return len(letters) == 2 })
	bySubject := map[string]deadLetter{}
	for _, l := range letters {
		bySubject[l.Subject] = l
	}
	if l := bySubject[a.DeadLetter]; l.Header.Get("Push-Id") != "off-1" || string(l.Data) != "are you there?" || l.Header.Get("Push-Node") != "pushhttp" {
		t.Fatalf("bob's dead letter: %+v", l)
	}
	if l := bySubject["dlq.push.offline.group.empty-room.high"]; l.Header.Get("Push-Id") != g.ID || string(l.Data) != "anyone?" {
		t.Fatalf("the group's dead letter: %+v", l)
	}
}

// What pushhttp refuses, and how: credentials (401 with a challenge, 403
// for a token without the push scope or a key that may not push there,
// client tokens refused even when pushhttp checks with the edge's own
// secret), bad input (400), a body over the limit (413), the wrong
// method (405), an unknown route (404). Nothing refused is pushed.
func TestHTTPRefusals(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	// pointed at the edge's secret by mistake: client tokens are still refused
	f := startHTTP(t, s, secret, func(c *httpapi.Config) { c.MaxPayload, c.MaxBatch = 1024, 2 })
	alice := dial(t, n.ws(), "alice", client.Options{})
	exp := time.Now().Add(time.Hour).Unix()
	claims := func(scope string, exp int64) jwt.MapClaims {
		return jwt.MapClaims{"sub": "cron", "aud": httpapi.DefaultAudience, "exp": exp, "scope": scope}
	}
	clientWithAud, _ := token.MintWith(secret, "alice", time.Hour, token.MintOptions{Audience: httpapi.DefaultAudience})
	for _, c := range []struct {
		what, cred string
		code       int
		want       string
	}{
		{"no credentials", "", 401, "no credentials"},
		{"a wrong key", httpapi.NewKey(), 401, "not an API key of this server"},
		{"a client token", mint(t, "alice"), 401, "a client token is no producer token"},
		{"a client token naming pushhttp", clientWithAud, 403, "scope"},
		{"a token without the push scope", signHS256(t, secret, claims("", exp)), 403, "scope"},
		{"an expired token", signHS256(t, secret, claims("push", time.Now().Add(-time.Minute).Unix())), 401, "token expired"},
		{"a token of another secret", signHS256(t, httpSecret, claims("push", exp)), 401, "signature"},
		{"a narrow key", "narrow", 403, "key narrow may not push to session alice"},
		{"a narrow token", mintProducer(t, secret, []string{"session:billing-*"}), 403, "jwt cron may not push to session alice"},
	} {
		a := f.post(t, "/v1/push/alice/high", c.cred, "refused")
		expectCode(t, c.what, a, c.code, c.want)
		if ch := a.header.Get("WWW-Authenticate"); c.code == 401 && !strings.HasPrefix(ch, `Bearer realm="pushhttp"`) {
			t.Fatalf("%s: WWW-Authenticate %q", c.what, ch)
		}
	}
	expectCode(t, "a narrow key where it may", f.post(t, "/v1/push/billing-7/high", "narrow", "x"), http.StatusNotFound, `"reason":"offline"`)
	for _, c := range []struct {
		what, path, body string
		kv               []string
		code             int
		want             string
	}{
		{"bad priority", "/v1/push/alice/urgent", "x", nil, 400, `priority \"urgent\": want high or low`},
		{"bad session", "/v1/push/a.b/high", "x", nil, 400, `session \"a.b\"`},
		{"reserved session", "/v1/push/group/high", "x", nil, 400, `session \"group\"`},
		{"bad group", "/v1/push/group/a.b/high", "x", nil, 400, `group \"a.b\"`},
		{"bad ack", "/v1/push/alice/high?ack=maybe", "x", nil, 400, "want enqueued, written or received"},
		{"written for a group", "/v1/push/group/g/high?ack=written", "x", nil, 400, "per session only"},
		{"timeout too long", "/v1/push/alice/high?timeout=1h", "x", nil, 400, "at most 2m0s"},
		{"unknown parameter", "/v1/push/alice/high?priority=low", "x", nil, 400, `query parameter \"priority\"`},
		{"unknown Push- header", "/v1/push/alice/high", "x", []string{"Push-Reply", "_INBOX.victim"}, 400, "header Push-Reply"},
		{"bad expiry", "/v1/push/alice/high", "x", []string{"Push-Expires", "tomorrow"}, 400, "RFC 3339"},
		{"long id", "/v1/push/alice/high", "x", []string{"Push-Id", strings.Repeat("i", 300)}, 400, "Push-Id of 300 bytes"},
		{"too large", "/v1/push/alice/high", strings.Repeat("x", 1025), nil, 413, "body of 1025 bytes: at most 1024"},
		{"unknown route", "/v2/push/alice/high", "x", nil, 404, "no such route"},
		{"batch: not JSON", "/v1/push", "alice hello", nil, 400, "want a JSON array"},
		{"batch: a bad push", "/v1/push", `[{"session":"alice"},{"session":"a.b"}]`, nil, 400, `push 1: session \"a.b\"`},
		{"batch: too many", "/v1/push", `[{"session":"alice"},{"session":"alice"},{"session":"alice"}]`, nil, 413, "too many pushes: at most 2"},
		{"batch: a payload too large", "/v1/push", `[{"session":"alice","payload":"` + strings.Repeat("x", 1025) + `"}]`, nil, 413, "push 0: payload of 1025 bytes"},
	} {
		expectCode(t, c.what, f.post(t, c.path, "billing", c.body, c.kv...), c.code, c.want)
	}
	// A body of no stated length (chunked) is cut at the limit too.
	req, _ := http.NewRequestWithContext(timeout(t), http.MethodPost, f.url+"/v1/push/alice/high", io.NopCloser(strings.NewReader(strings.Repeat("x", 4096))))
	req.Header.Set("Authorization", "Bearer "+f.keys["billing"])
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 || !strings.Contains(string(b), "body over 1024 bytes") {
		t.Fatalf("a chunked body over the limit: %d %s", resp.StatusCode, b)
	}
	expectCode(t, "batch: a push the key may not make", f.post(t, "/v1/push", "narrow", `[{"session":"billing-1"},{"session":"alice"}]`),
		http.StatusForbidden, `"index":1`, "may not push to session alice")
	a := f.do(t, http.MethodGet, "/v1/push/alice/high", "billing", nil)
	expectCode(t, "GET", a, http.StatusMethodNotAllowed, "only POST")
	if a.header.Get("Allow") != "POST" {
		t.Fatalf("GET: Allow %q", a.header.Get("Allow"))
	}
	// Nothing refused reached alice, nor the dead-letter stream but the
	// narrow key's push to billing-7 (and the batch's billing-1 was not sent).
	expectCode(t, "the last push", f.post(t, "/v1/push/alice/high", "billing", "the only one"), http.StatusAccepted)
	if fr := recv(t, alice); string(fr.Payload) != "the only one" {
		t.Fatalf("alice got %q first", fr.Payload)
	}
	var letters []deadLetter
	waitFor(t, "billing-7's dead letter", func() bool { letters = deadLetters(t, s); return len(letters) > 0 })
	if len(letters) != 1 || letters[0].Subject != "dlq.push.offline.billing-7.high" {
		t.Fatalf("dead letters: %+v", letters)
	}
}

func signHS256(t *testing.T, key []byte, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A push that dies on the edge is answered with its reason's status, its
// dead letter named: 410 expired, 429 queue_full (a client held to one push
// per 1,000 s, with a queue of one), 422 invalid (over the edge's frame
// size, which the endpoint's own limit let through); and 413 for a
// payload within that limit whose headers take it over the NATS server's
// max_payload.
func TestHTTPDeadReasons(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.Rate, cfg.Edge.Burst, cfg.Edge.QueueLen, cfg.Edge.MaxFrameSize = 0.001, 1, 1, 4096
	n := startEdge(t, cfg)
	f := startHTTP(t, s, httpSecret, nil)
	alice := dial(t, n.ws(), "alice", client.Options{})
	expectCode(t, "expired", f.post(t, "/v1/push/alice/high", "billing", "late", "Push-Expires", "2001-01-01T00:00:00Z"),
		http.StatusGone, `"reason":"expired"`, `"dead_letter":"dlq.push.expired.alice.high"`)
	expectCode(t, "too large for the edge", f.post(t, "/v1/push/alice/high", "billing", strings.Repeat("x", 8192)),
		http.StatusUnprocessableEntity, `"reason":"invalid"`, `"dead_letter":"dlq.push.invalid.alice.high"`)
	expectCode(t, "over the NATS server's max_payload", f.post(t, "/v1/push/alice/high", "billing", strings.Repeat("x", 1<<20)),
		http.StatusRequestEntityTooLarge, `"error":"too_large"`, "maximum payload exceeded")
	expectCode(t, "first", f.post(t, "/v1/push/alice/high?ack=written", "billing", "1"), http.StatusOK)
	recv(t, alice)
	expectCode(t, "second, waits for the rate", f.post(t, "/v1/push/alice/high", "billing", "2"), http.StatusAccepted)
	expectCode(t, "third, no room", f.post(t, "/v1/push/alice/high", "billing", "3"), http.StatusTooManyRequests,
		`"reason":"queue_full"`, `"dead_letter":"dlq.push.queue_full.alice.high"`)
}

// 504 when no acknowledgement comes within the request's timeout (a
// client that never confirms a push that asks ack=received; the answer
// names the push, to send again with the same id), and 503 once the NATS
// server is shut down: pushes, batches and /healthz alike, with a
// Retry-After.
func TestHTTPUnavailableAndTimeout(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	f := startHTTP(t, s, httpSecret, nil)
	alice := dial(t, n.ws(), "alice", client.Options{ManualReceipts: true})
	a := f.post(t, "/v1/push/alice/high?ack=received&timeout=300ms", "billing", "confirm me, never", "Push-Id", "slow-1")
	expectCode(t, "unconfirmed", a, http.StatusGatewayTimeout, `"error":"unacknowledged"`, `"id":"slow-1"`, "send it again with the same Push-Id")
	if fr := recv(t, alice); fr.ID != "slow-1" || !fr.WantsReceipt {
		t.Fatalf("alice got %s (receipt %v)", fr.ID, fr.WantsReceipt)
	}
	b := f.post(t, "/v1/push?ack=received&timeout=300ms", "billing", `[{"session":"alice","payload":"b"}]`)
	expectCode(t, "unconfirmed batch", b, http.StatusGatewayTimeout, `"status":"failed"`, `"failed":1`)
	if b.Results[0].ID == "" || b.Results[0].Code != 504 {
		t.Fatalf("unconfirmed batch: %s", b.raw)
	}

	// Another NATS server, whose going away no edge has to live through.
	s2 := natstest.Server(t)
	f = startHTTP(t, s2, httpSecret, nil)
	expectCode(t, "health", f.do(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
	s2.Shutdown()
	waitFor(t, "pushhttp's NATS connection to notice", func() bool { return !f.nc.IsConnected() })
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/push/alice/high", "x"}, {http.MethodPost, "/v1/push/group/g/high", "x"},
		{http.MethodPost, "/v1/push", `[{"session":"alice"}]`}, {http.MethodGet, "/healthz", ""},
	} {
		a := f.do(t, c.method, c.path, "billing", []byte(c.body))
		expectCode(t, c.path+" without NATS", a, http.StatusServiceUnavailable, `"error":"nats_unavailable"`, "not connected to NATS")
		if a.header.Get("Retry-After") == "" {
			t.Fatalf("%s without NATS: no Retry-After", c.path)
		}
	}
}

// A request's traceparent is the parent of the producer's span when
// tracing is on: the push, and its dead letter, carry the caller's trace
// with the producer's span.
func TestHTTPTraceContext(t *testing.T) {
	s := natstest.Server(t)
	startEdge(t, edgeConfig(t, s, "n1"))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	f := startHTTPWith(t, s, httpSecret, nil, producer.Options{Name: "pushhttp", TracerProvider: tp})
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	a := f.post(t, "/v1/push/bob/high", "billing", "traced", "traceparent", "00-"+traceID+"-"+parentID+"-01")
	expectCode(t, "traced push", a, http.StatusNotFound)
	var letters []deadLetter
	waitFor(t, "the dead letter", func() bool { letters = deadLetters(t, s); return len(letters) == 1 })
	got := strings.Split(letters[0].Header.Get("traceparent"), "-")
	spans := rec.Ended()
	if len(got) != 4 || got[1] != traceID || got[2] == parentID || len(spans) != 1 ||
		spans[0].Parent().SpanID().String() != parentID || spans[0].SpanContext().SpanID().String() != got[2] {
		t.Fatalf("traceparent %q of the dead letter; spans %d; want trace %s, the producer's span under %s", got, len(spans), traceID, parentID)
	}
}
