package tests

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// nodePath is the Node.js binary, 20 or later: $PUSHFABRIC_NODE, else
// node on PATH. Without one the test fails when PUSHFABRIC_REQUIRE_NODE is
// set (make unit, CI) and skips, saying so, otherwise.
func nodePath(t *testing.T) string {
	p := os.Getenv("PUSHFABRIC_NODE")
	if p == "" {
		p, _ = exec.LookPath("node")
	}
	why := "no node on PATH"
	if p != "" {
		out, err := exec.Command(p, "--version").Output()
		major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
		if n, _ := strconv.Atoi(major); err == nil && n >= 20 {
			return p
		}
		why = fmt.Sprintf("%s --version says %q (%v): want Node 20 or later", p, strings.TrimSpace(string(out)), err)
	}
	if os.Getenv("PUSHFABRIC_REQUIRE_NODE") != "" {
		t.Fatalf("%s, and PUSHFABRIC_REQUIRE_NODE is set (apt-get install nodejs, or set PUSHFABRIC_NODE)", why)
	}
	t.Skipf("%s (apt-get install nodejs): the JavaScript client (clients/js) is not tested", why)
	return ""
}

// The JavaScript client (clients/js) passes its own tests under Node's
// test runner: the codec against edge/wire's vectors, its logic against a
// scripted socket, and, through the bridge below, a real edge on a real
// NATS server: pushes high and low, repeats dropped, a reconnect after the
// node shuts down to the next node on its address with no push lost or
// shown twice, replaced and auth ending it, streamed requests, a cancel,
// error frames.
func TestJSClient(t *testing.T) {
	exe := nodePath(t)
	b := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "--experimental-websocket", "--no-warnings", "--test", "--test-reporter=spec", "test/")
	cmd.Dir = filepath.Join("..", "clients", "js")
	cmd.Env = append(os.Environ(),
		"PUSHFABRIC_BRIDGE="+b.url,
		"PUSHFABRIC_EDGE_WS="+b.current().ws(),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test clients/js/test/: %v\n%s", err, out)
	}
	t.Logf("node --test clients/js/test/:\n%s", out)
}

// jsBridge is what the Node tests ask of the Go side, over HTTP on
// loopback: tokens, pushes published on NATS (answering with the ack),
// the node shut down and the next started on its WebSocket address, a
// session taken over or kicked, and the node's metrics.
type jsBridge struct {
	t   *testing.T
	s   *server.Server
	nc  *nats.Conn
	url string

	mu     sync.Mutex
	next   int            // guarded by mu: the number of the next node
	edge   *jsNode        // guarded by mu: the node serving now
	held   []*client.Conn // guarded by mu: connections that took sessions over
	wsAddr string         // guarded by mu: the WebSocket address every node listens on
}

func startBridge(t *testing.T) *jsBridge {
	s := natstest.Server(t)
	b := &jsBridge{t: t, s: s, nc: natstest.Connect(t, s), next: 1}
	serve(t, b.nc, "feed", feed)
	serve(t, b.nc, "ticks", ticks)
	serve(t, b.nc, "refuse", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.Fail(&backend.Error{Code: "not_today", Message: "refused for the test"})
	})
	n, err := b.startNode("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.edge, b.wsAddr = n, n.Addr("websocket").String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", b.token)
	mux.HandleFunc("POST /push", b.push)
	mux.HandleFunc("POST /restart", b.restart)
	mux.HandleFunc("POST /takeover", b.takeover)
	mux.HandleFunc("POST /kick", b.kick)
	mux.HandleFunc("GET /metrics", b.metrics)
	srv := httptest.NewServer(mux)
	b.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.held {
			_ = c.Close()
		}
	})
	return b
}

// startNode starts node edge-<n> listening for WebSocket clients on ws,
// stopped at cleanup; it reports errors instead of failing, for handlers.
// jsNode is a node the bridge started, and its name.
type jsNode struct {
	*edgeNode
	name string
}

func (b *jsBridge) startNode(ws string) (*jsNode, error) {
	name := fmt.Sprintf("edge-%d", b.next)
	cfg := edgeConfig(b.t, b.s, name)
	b.next++
	cfg.WSListen = ws
	node, stop, err := app.Run(timeout(b.t), cfg, zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("edge %s: %w", cfg.Identity.Node, err)
	}
	n := &jsNode{edgeNode: &edgeNode{Node: node, stop: stop}, name: name}
	b.t.Cleanup(func() { n.shutdown(b.t) })
	return n, nil
}

func (b *jsBridge) current() *jsNode {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.edge
}

// token mints a token for ?session=, valid for ?ttl= (default an hour).
func (b *jsBridge) token(w http.ResponseWriter, r *http.Request) {
	ttl, err := time.ParseDuration(cmp.Or(r.URL.Query().Get("ttl"), "1h"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tok, err := token.Mint(secret, r.URL.Query().Get("session"), ttl)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, tok)
}

// pushRequest is a push the Node tests publish.
type pushRequest struct {
	Session  string `json:"session"`
	ID       string `json:"id"`
	Priority string `json:"priority"` // high or low
	Payload  string `json:"payload"`
	Ack      string `json:"ack"` // Push-Ack; empty: enqueued
}

// push publishes a push on NATS as a producer does and answers with the
// edge's ack.
func (b *jsBridge) push(w http.ResponseWriter, r *http.Request) {
	var p pushRequest
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := pushMsg(p.Session, p.Priority, p.ID, p.Payload)
	if p.Ack != "" {
		m.Header.Set(protocol.HeaderAck, p.Ack)
	}
	reply, err := b.nc.RequestMsg(m, testTimeout)
	if err != nil {
		http.Error(w, fmt.Sprintf("push %s: %v", p.ID, err), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(reply.Data)
}

// restart shuts the node down (its clients are closed with shutdown) and
// starts the next on its WebSocket address; it answers with the new
// node's name.
func (b *jsBridge) restart(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.edge.shutdown(b.t)
	n, err := b.startNode(b.wsAddr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b.edge = n
	writeJSON(w, map[string]string{"node": n.name})
}

// takeover connects a Go client for ?session=, which replaces the
// connection holding it; it answers with the node that holds it now.
func (b *jsBridge) takeover(w http.ResponseWriter, r *http.Request) {
	tok, err := token.Mint(secret, r.URL.Query().Get("session"), time.Hour)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, err := client.Dial(r.Context(), b.current().ws(), client.Options{Token: tok})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	b.mu.Lock()
	b.held = append(b.held, c)
	b.mu.Unlock()
	writeJSON(w, map[string]string{"node": c.Node()})
}

// kick revokes ?session= with a kick request on NATS and answers with
// the node's answer.
func (b *jsBridge) kick(w http.ResponseWriter, r *http.Request) {
	subject := protocol.PushSubject(protocol.DefaultPrefix, r.URL.Query().Get("session"), protocol.Kick)
	reply, err := b.nc.Request(subject, nil, testTimeout)
	if err != nil {
		http.Error(w, fmt.Sprintf("kick: %v", err), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(reply.Data)
}

// metrics passes the node's /metrics on.
func (b *jsBridge) metrics(w http.ResponseWriter, _ *http.Request) {
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", b.current().Addr("admin")))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(w, resp.Body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ticks streams "tick 1" … "tick 50", one every 20 ms, until NATS goes
// (a backend is not told of a cancel: its later replies are dropped).
func ticks(ctx context.Context, _ *backend.Request) iter.Seq2[backend.Reply, error] {
	return func(yield func(backend.Reply, error) bool) {
		for i := 1; i <= 50; i++ {
			if !yield(backend.Reply{Payload: fmt.Appendf(nil, "tick %d", i)}, nil) {
				return
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				yield(backend.Reply{}, errors.New("stopping"))
				return
			}
		}
	}
}
