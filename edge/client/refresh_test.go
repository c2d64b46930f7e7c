package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// fakeJWT is an unsigned token shaped as a JWT, with an exp in fractions
// of a second: what jwtPayloadAuth reads.
func fakeJWT(session string, exp time.Time) string {
	payload, _ := json.Marshal(map[string]any{"sub": session, "exp": float64(exp.UnixNano()) / 1e9})
	return "e30." + base64.RawURLEncoding.EncodeToString(payload) + ".sig"
}

// jwtPayloadAuth trusts a fakeJWT's claims: the session and its expiry.
type jwtPayloadAuth struct{}

func (jwtPayloadAuth) Authenticate(ctx context.Context, cr edge.Credentials) (string, error) {
	id, err := jwtPayloadAuth{}.AuthenticateIdentity(ctx, cr)
	return id.Session, err
}

func (jwtPayloadAuth) AuthenticateIdentity(_ context.Context, cr edge.Credentials) (edge.Identity, error) {
	parts := strings.Split(cr.Token, ".")
	exp, ok := client.TokenExpiry(cr.Token)
	if len(parts) != 3 || !ok {
		return edge.Identity{}, errors.New("token is not valid")
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Sub string }
	_ = json.Unmarshal(b, &claims)
	if !exp.After(time.Now()) {
		return edge.Identity{}, errors.New("token expired")
	}
	return edge.Identity{Session: claims.Sub, Expires: exp}, nil
}

func TestTokenExpiryReadsExp(t *testing.T) {
	exp := time.Unix(1700000000, 500_000_000)
	if got, ok := client.TokenExpiry(fakeJWT("s", exp)); !ok || got.Sub(exp).Abs() > time.Millisecond {
		t.Errorf("TokenExpiry: %v, %v; want %v", got, ok, exp)
	}
	for _, bad := range []string{"", "a.b", "a.!!.c", "e30.e30.c"} {
		if _, ok := client.TokenExpiry(bad); ok {
			t.Errorf("TokenExpiry(%q) found an exp", bad)
		}
	}
}

func TestRefreshTime(t *testing.T) {
	got := time.Unix(1000, 0)
	for _, tc := range []struct{ life, want time.Duration }{
		{time.Hour, 48 * time.Minute},
		{100 * time.Second, 70 * time.Second},
		{time.Minute, 30 * time.Second},
		{40 * time.Second, 20 * time.Second},
		{time.Second, 500 * time.Millisecond},
	} {
		if at := client.RefreshTime(got, got.Add(tc.life)); at.Sub(got) != tc.want {
			t.Errorf("lifetime %v: refresh after %v; want %v", tc.life, at.Sub(got), tc.want)
		}
	}
}

// A Session refreshes its token through the callback ahead of each exp:
// three refreshes take longer than the first token's life, and the one
// connection stays up throughout.
func TestSessionRefreshesAheadOfExpiry(t *testing.T) {
	n := startEdge(t, "a", "127.0.0.1:0", "127.0.0.1:0", jwtPayloadAuth{}, nil)
	var disconnects atomic.Int32
	r := fast
	r.Token = func(context.Context) (string, error) {
		return fakeJWT("fresh", time.Now().Add(600*time.Millisecond)), nil
	}
	r.OnState = func(st client.State) {
		if st.Kind == client.StateDisconnected {
			disconnects.Add(1)
		}
	}
	for _, addr := range []string{n.tcp, n.ws} {
		t.Run(addr[:2], func(t *testing.T) {
			before := n.srv.Stats().Refreshes[edge.RefreshOK]
			dialSession(t, addr, r)
			waitFor(t, "three refreshes", func() bool { return n.srv.Stats().Refreshes[edge.RefreshOK] >= before+3 })
			if d := disconnects.Load(); d != 0 {
				t.Fatalf("%d disconnects; want the first connection to stay up", d)
			}
		})
	}
	if d := n.srv.Stats().Disconnects[wire.CloseTokenExpired]; d != 0 {
		t.Fatalf("%d connections closed token_expired", d)
	}
}

// When the token callback cannot refresh in time the edge closes the
// connection token_expired, and the Session reconnects with a fresh token
// from the callback.
func TestSessionReconnectsAfterTokenExpired(t *testing.T) {
	n := startEdge(t, "a", "127.0.0.1:0", "127.0.0.1:0", jwtPayloadAuth{}, nil)
	var calls atomic.Int32
	states := make(chan client.State, 16)
	var down atomic.Bool // the token service fails the first connection's refreshes
	down.Store(true)
	r := fast
	r.Token, r.OnState = func(context.Context) (string, error) {
		c := calls.Add(1)
		switch {
		case c == 1:
			return fakeJWT("lapsed", time.Now().Add(400*time.Millisecond)), nil
		case down.Load():
			return "", fmt.Errorf("call %d: the token service is down", c)
		}
		return fakeJWT("lapsed", time.Now().Add(time.Hour)), nil
	}, func(st client.State) {
		if st.Kind == client.StateDisconnected {
			down.Store(false)
		}
		states <- st
	}
	dialSession(t, n.tcp, r)
	for {
		select {
		case st := <-states:
			var ce *client.CloseError
			if st.Kind == client.StateConnected && errors.As(st.Err, &ce) {
				if ce.Reason != wire.CloseTokenExpired {
					t.Fatalf("reconnected after %v; want token_expired", st.Err)
				}
				return
			}
			if st.Kind == client.StateStopped {
				t.Fatalf("session stopped: %v", st.Err)
			}
		case <-time.After(testTimeout):
			t.Fatal("no reconnect after token_expired")
		}
	}
}
