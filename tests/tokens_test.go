package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/token"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

// tokenEdge is an edge binary checking tokens with a key directory and an
// audience, logging at debug level.
type tokenEdge struct {
	*edgeProcess
	dir     string // --jwt-keys
	tcp, ws string
	secrets [][]byte // every key, for the log check
	pushctl string   // the binary tryMint runs

	mu       sync.Mutex
	tokens   []string          // guarded by mu: every token the test presented, for the log check
	keyFiles map[string]string // guarded by mu: by kid; read by token callbacks, which may outlive their session
}

func startTokenEdge(t *testing.T) *tokenEdge {
	t.Helper()
	s := natstest.Server(t)
	e := &tokenEdge{dir: t.TempDir(), keyFiles: map[string]string{}, pushctl: binary(t, "pushctl")}
	e.addKey(t, "k1", []byte("the first HS256 key, of 32 bytes or more"))
	e.edgeProcess = startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--ws-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0",
		"--jwt-keys", e.dir, "--jwt-audience", "push", "--log-level", "debug")
	e.tcp, e.ws = "tcp://"+e.addr("tcp"), "ws://"+e.addr("websocket")+"/"
	return e
}

func (e *tokenEdge) addKey(t *testing.T, kid string, key []byte) {
	t.Helper()
	e.secrets = append(e.secrets, key)
	e.mu.Lock()
	e.keyFiles[kid] = filepath.Join(e.dir, kid)
	e.mu.Unlock()
	putFile(t, filepath.Join(e.dir, kid), key)
}

// mint mints with pushctl token, as an operator would.
func (e *tokenEdge) mint(t *testing.T, kid, session, ttl string) string {
	t.Helper()
	tok, err := e.tryMint(timeout(t), kid, session, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tryMint is mint for a token callback, off the test's goroutine.
func (e *tokenEdge) tryMint(ctx context.Context, kid, session, ttl string) (string, error) {
	e.mu.Lock()
	file := e.keyFiles[kid]
	e.mu.Unlock()
	args := []string{"token", "--secret-file", file, "--kid", kid, "--aud", "push", "--ttl", ttl, session}
	out, err := exec.CommandContext(ctx, e.pushctl, args...).Output()
	if err != nil {
		return "", fmt.Errorf("pushctl %q: %w", args, err)
	}
	return e.remember(strings.TrimSpace(string(out))), nil
}

// remember notes a token presented in the test for the log check.
func (e *tokenEdge) remember(tok string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens = append(e.tokens, tok)
	return tok
}

func (e *tokenEdge) presented() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.tokens)
}

func dialToken(t *testing.T, addr, tok string) (*client.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(timeout(t), testTimeout)
	defer cancel()
	return client.Dial(ctx, addr, client.Options{Token: tok})
}

// closedWith waits for c to end and checks its close reason.
func closedWith(t *testing.T, c *client.Conn, reason wire.CloseReason) string {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatalf("connection not closed; want %s", reason)
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) || ce.Reason != reason {
		t.Fatalf("connection ended with %v; want %s", c.Err(), reason)
	}
	return ce.Message
}

// A node with a key directory and an audience: tokens by kid and aud,
// expiry, refreshes, rotation without a restart; and through all of it,
// at debug level, no token and no key in its log.
func TestTokensExpireRefreshAndRotate(t *testing.T) {
	e := startTokenEdge(t)
	t.Run("refused at connect", e.refusedAtConnect)
	t.Run("expiry", e.expires)
	t.Run("refresh for another session", e.refusesRefresh)
	t.Run("session refreshes", e.sessionRefreshes)
	t.Run("rotation", e.rotates)
	if _, err := e.stop(t); err != nil {
		t.Fatalf("edge exited with %v", err)
	}
	e.mustNotLogSecrets(t)
}

// refusedAtConnect: the wrong audience, an unknown kid, a bad signature,
// not valid yet.
func (e *tokenEdge) refusedAtConnect(t *testing.T) {
	k1 := []byte("the first HS256 key, of 32 bytes or more")
	for _, c := range []struct{ what, tok, want string }{
		{"no audience", e.remember(mustMint(t, k1, token.MintOptions{KeyID: "k1"})), "audience"},
		{"an unknown kid", e.remember(mustMint(t, k1, token.MintOptions{KeyID: "k9", Audience: "push"})), `"k9"`},
		{"another key's signature", e.remember(mustMint(t, []byte("a key the node does not hold, 32+ bytes"), token.MintOptions{KeyID: "k1", Audience: "push"})), "signature"},
		{"not valid yet", e.remember(mustMint(t, k1, token.MintOptions{KeyID: "k1", Audience: "push", NotBefore: time.Now().Add(time.Hour)})), "not valid yet"},
	} {
		_, err := dialToken(t, e.ws, c.tok)
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Reason != wire.CloseAuth || !strings.Contains(ce.Message, c.want) {
			t.Errorf("%s: %v; want auth saying %q", c.what, err, c.want)
		}
	}
}

// expires: a token of 1 s, not refreshed, ends its connection at exp plus
// the leeway.
func (e *tokenEdge) expires(t *testing.T) {
	short := e.mint(t, "k1", "lapsing", "1s")
	c, err := dialToken(t, e.tcp, short)
	if err != nil {
		t.Fatal(err)
	}
	until, _ := client.TokenExpiry(short)
	closedWith(t, c, wire.CloseTokenExpired)
	if late := time.Until(until.Add(token.Leeway)); late > 0 {
		t.Fatalf("closed %v before exp plus the leeway", late)
	}
}

// refusesRefresh: a refresh for another session, signed with a key the
// node does not hold, or not a token, closes auth (each refused refresh
// logged at debug level, without the token: mustNotLogSecrets).
func (e *tokenEdge) refusesRefresh(t *testing.T) {
	forged := e.remember(mustMint(t, []byte("a key the node does not hold, 32+ bytes"), token.MintOptions{KeyID: "k1", Audience: "push"}))
	for _, c := range []struct{ what, tok, want string }{
		{"for another session", e.mint(t, "k1", "mallory", "1h"), "another session"},
		{"with a forged signature", forged, "signature"},
		{"not a token", e.remember("not.a-token.at-all"), "not valid"},
	} {
		conn, err := dialToken(t, e.ws, e.mint(t, "k1", "eve", "1h"))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Refresh(c.tok); err != nil {
			t.Fatal(err)
		}
		if msg := closedWith(t, conn, wire.CloseAuth); !strings.Contains(msg, c.want) {
			t.Fatalf("refresh %s: close message %q; want %q", c.what, msg, c.want)
		}
	}
}

// sessionRefreshes: a Session refreshes through its callback, and
// outlives its first token (2 s, plus the leeway) on one connection.
func (e *tokenEdge) sessionRefreshes(t *testing.T) {
	var first atomic.Value // the first token the callback gave
	r := client.ReconnectOptions{Token: func(ctx context.Context) (string, error) {
		tok, err := e.tryMint(ctx, "k1", "bob", "2s")
		first.CompareAndSwap(nil, tok)
		return tok, err
	}}
	var disconnects int // written on the session's goroutine, read once it has ended
	r.OnState = func(st client.State) {
		if st.Kind == client.StateDisconnected {
			disconnects++
		}
	}
	sess, err := client.Connect(timeout(t), e.ws, client.Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := client.TokenExpiry(first.Load().(string))
	waitFor(t, "past the first token's end, refreshed", func() bool {
		return time.Now().After(exp.Add(token.Leeway+time.Second)) && refreshes(t, e.addr("admin"), "ok") >= 2
	})
	if err := sess.Close(); err != nil || disconnects != 0 {
		t.Fatalf("close %v, %d disconnects; want the first connection throughout", err, disconnects)
	}
}

// rotates: a key added to the directory is taken within its poll, and a
// broken one leaves the keys in use.
func (e *tokenEdge) rotates(t *testing.T) {
	e.addKey(t, "k2", []byte("the second HS256 key, of 32 bytes or more"))
	k2 := e.mint(t, "k2", "carol", "1h")
	waitFor(t, "k2 accepted", func() bool {
		c, err := dialToken(t, e.tcp, k2)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	e.addKey(t, "broken", []byte("short secret"))
	waitFor(t, "the broken set logged", func() bool {
		return e.logged("JWT key files changed but do not load; checking tokens with the keys in use")
	})
	c, err := dialToken(t, e.tcp, e.mint(t, "k1", "dave", "1h"))
	if err != nil {
		t.Fatalf("k1 after a broken reload: %v", err)
	}
	_ = c.Close()
}

func mustMint(t *testing.T, key []byte, o token.MintOptions) string {
	t.Helper()
	tok, err := token.MintWith(key, "eve", time.Hour, o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mustNotLogSecrets checks the whole log for every token presented (and
// each token's signature alone) and every key.
func (e *tokenEdge) mustNotLogSecrets(t *testing.T) {
	t.Helper()
	var all strings.Builder
	for _, l := range e.logs.all() {
		b, _ := json.Marshal(l)
		all.Write(b)
		all.WriteByte('\n')
	}
	log := all.String()
	if !strings.Contains(log, `"msg":"client rejected"`) || !strings.Contains(log, `"msg":"token refresh refused"`) {
		t.Fatalf("the log lacks the debug lines the check is for:\n%s", log)
	}
	for _, tok := range e.presented() {
		mustNotShow(t, "the edge's log", log, tok, tok[strings.LastIndexByte(tok, '.')+1:])
	}
	for _, k := range e.secrets {
		mustNotShow(t, "the edge's log", log, string(k))
	}
	if raw, err := os.ReadFile(filepath.Join(e.dir, "k1")); err != nil || strings.Contains(log, string(raw)) {
		t.Fatalf("k1's file: %v, or in the log", err)
	}
}

// refreshes is the node's token_refreshes_total{result}.
func refreshes(t *testing.T, admin, result string) float64 {
	t.Helper()
	_, mfs := scrapeAddr(t, admin)
	for _, m := range mfs["pushfabric_token_refreshes_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
