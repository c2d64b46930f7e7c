package edge_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// expiringAuth reads tokens of the form "session|unix-nanoseconds": the
// session and when the token expires.
type expiringAuth struct{}

func (expiringAuth) Authenticate(ctx context.Context, cr edge.Credentials) (string, error) {
	id, err := expiringAuth{}.AuthenticateIdentity(ctx, cr)
	return id.Session, err
}

func (expiringAuth) AuthenticateIdentity(_ context.Context, cr edge.Credentials) (edge.Identity, error) {
	session, exp, ok := strings.Cut(cr.Token, "|")
	ns, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil {
		return edge.Identity{}, errors.New("token is not valid")
	}
	return edge.Identity{Session: session, Expires: time.Unix(0, ns)}, nil
}

func expiringToken(session string, exp time.Time) string {
	return session + "|" + strconv.FormatInt(exp.UnixNano(), 10)
}

// tokenTCP connects over TCP with tok.
func tokenTCP(t *testing.T, n *node, tok string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", n.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	r := &rawConn{nc: nc, br: bufio.NewReader(nc)}
	r.send(t, wire.Frame{Type: wire.TypeHello, Payload: []byte(tok)})
	if f := r.next(t); f.Type != wire.TypeWelcome {
		t.Fatalf("first frame %v %q; want welcome", f.Type, f.Payload)
	}
	return r
}

// wantClose reads up to the close frame and returns its message.
func wantClose(t *testing.T, r *rawConn, reason wire.CloseReason) string {
	t.Helper()
	for {
		if f := r.next(t); f.Type == wire.TypeClose {
			if f.Name != string(reason) {
				t.Fatalf("close reason %q (%s); want %q", f.Name, f.Payload, reason)
			}
			return string(f.Payload)
		}
	}
}

// A connection does not outlive its token: at its expiry it is closed
// token_expired, and what it had queued (held back by the rate limit) is
// dead-lettered closed.
func TestTokenExpiryClosesConnection(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1
	n := startNode(t, cfg, edge.Options{Auth: expiringAuth{}})
	exp := time.Now().Add(300 * time.Millisecond)
	r := tokenTCP(t, n, expiringToken("expiring", exp))
	h := n.handle(t, "expiring")
	for _, id := range []string{"p0", "p1", "p2"} {
		mustTryPush(t, h, push.Low, id)
	}
	wantClose(t, r, wire.CloseTokenExpired)
	if now := time.Now(); now.Before(exp) {
		t.Fatalf("closed %v before the token's expiry", exp.Sub(now))
	}
	<-h.Done()
	dls := n.sink.waitLen(t, 2)
	for i, want := range []string{"p1", "p2"} {
		if dls[i].Frame.ID != want || dls[i].Reason != push.ReasonClosed {
			t.Fatalf("dead letters %+v; want p1 and p2 as closed", dls)
		}
	}
	if d := n.srv.Stats().Disconnects[wire.CloseTokenExpired]; d != 1 {
		t.Fatalf("disconnects token_expired %d; want 1", d)
	}
}

// A refresh frame with a valid token for the same session moves the
// expiry: the connection is closed at the new one, not the first.
func TestRefreshMovesExpiry(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: expiringAuth{}})
	r := tokenTCP(t, n, expiringToken("fresh", time.Now().Add(300*time.Millisecond)))
	later := time.Now().Add(1500 * time.Millisecond)
	r.send(t, wire.Frame{Type: wire.TypeRefresh, Payload: []byte(expiringToken("fresh", later))})
	wantClose(t, r, wire.CloseTokenExpired)
	if now := time.Now(); now.Before(later) {
		t.Fatalf("closed %v before the refreshed expiry", later.Sub(now))
	}
	if got := n.srv.Stats().Refreshes; got[edge.RefreshOK] != 1 || got[edge.RefreshRefused] != 0 {
		t.Fatalf("refreshes %v; want one ok", got)
	}
}

// A refresh that is not valid, or names another session, closes the
// connection auth, saying why.
func TestRefreshRefused(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: expiringAuth{}})
	hour := time.Now().Add(time.Hour)
	for i, tc := range []struct{ tok, want string }{
		{expiringToken("mallory", hour), "another session"},
		{"garbage", "not valid"},
	} {
		r := tokenTCP(t, n, expiringToken("alice", hour))
		h := n.handle(t, "alice")
		r.send(t, wire.Frame{Type: wire.TypeRefresh, Payload: []byte(tc.tok)})
		if msg := wantClose(t, r, wire.CloseAuth); !strings.Contains(msg, tc.want) {
			t.Errorf("close message %q; want %q", msg, tc.want)
		}
		<-h.Done()
		if got := n.srv.Stats().Refreshes[edge.RefreshRefused]; got != uint64(i+1) {
			t.Fatalf("refused refreshes %d; want %d", got, i+1)
		}
	}
	if d := n.srv.Stats().Disconnects[wire.CloseAuth]; d != 2 {
		t.Fatalf("disconnects auth %d; want 2", d)
	}
}

// A connection without an expiry (development mode) ignores a refresh
// frame: it stays open and receives.
func TestRefreshWithoutExpiryIgnored(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	r := rawTCP(t, n, "dev")
	r.send(t, wire.Frame{Type: wire.TypeRefresh, Payload: []byte("anything")})
	r.send(t, wire.Frame{Type: wire.TypePing, Payload: []byte("after")})
	if f := r.next(t); f.Type != wire.TypePong || string(f.Payload) != "after" {
		t.Fatalf("got %v %q; want the pong", f.Type, f.Payload)
	}
	mustTryPush(t, n.handle(t, "dev"), push.High, "p0")
	if f := r.next(t); f.ID != "p0" {
		t.Fatalf("got %v %s; want p0", f.Type, f.ID)
	}
	if got := n.srv.Stats().Refreshes[edge.RefreshIgnored]; got != 1 {
		t.Fatalf("ignored refreshes %d; want 1", got)
	}
}
