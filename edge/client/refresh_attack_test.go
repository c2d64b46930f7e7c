package client_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// refreshesSeen is every refresh frame the node counted, whatever came
// of it.
func refreshesSeen(n *testNode) uint64 {
	var sum uint64
	for _, v := range n.srv.Stats().Refreshes {
		sum += v
	}
	return sum
}

// A token callback that, asked for a refresh, hands back the token the
// connection already has (a stale cache) or one already expired does not
// make the Session spin: no such token is sent (each was a refresh frame
// in a loop that tightened as exp neared, and past it a refusal closed
// the connection auth, ending the session). The refresh counts as failed,
// is tried again every 2 s, and once the edge closes the connection
// token_expired the session reconnects, the failure named in the
// disconnect's error.
func TestSessionRefreshWithStaleTokenDoesNotSpin(t *testing.T) {
	n := startEdge(t, "a", "127.0.0.1:0", "127.0.0.1:0", jwtPayloadAuth{}, nil)
	for name, stale := range map[string]func(first string) string{
		"the same token": func(first string) string { return first },
		"expired":        func(string) string { return fakeJWT("stale", time.Now().Add(-time.Second)) },
	} {
		t.Run(name, func(t *testing.T) {
			before := refreshesSeen(n)
			var first atomic.Value
			var expired atomic.Bool
			states := make(chan client.State, 64)
			r := fast
			r.Token = func(context.Context) (string, error) {
				switch f, _ := first.Load().(string); {
				case f == "":
					f = fakeJWT("stale", time.Now().Add(1500*time.Millisecond))
					first.Store(f)
					return f, nil
				case !expired.Load():
					return stale(f), nil
				}
				return fakeJWT("stale", time.Now().Add(time.Hour)), nil
			}
			r.OnState = func(st client.State) {
				if st.Kind == client.StateDisconnected {
					expired.Store(true)
				}
				states <- st
			}
			s := dialSession(t, n.tcp, r)
			wantTokenExpired(t, states, "expires no later")
			if got := refreshesSeen(n) - before; got != 0 {
				t.Fatalf("%d refresh frames sent with stale tokens; want none", got)
			}
			waitFor(t, "the reconnect", func() bool { return s.Node() != "" })
		})
	}
	if got := n.srv.Stats().Refreshes[edge.RefreshRefused]; got != 0 {
		t.Fatalf("%d refreshes refused", got)
	}
}

// dialSession connects a Session to addr, closed when the test ends.
func dialSession(t *testing.T, addr string, r client.ReconnectOptions) *client.Session {
	t.Helper()
	s, err := client.Connect(t.Context(), addr, client.Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// wantTokenExpired waits for the session's next disconnect, which must be
// token_expired with an error saying why the refresh failed.
func wantTokenExpired(t *testing.T, states <-chan client.State, why string) {
	t.Helper()
	st := nextDisconnect(t, states)
	var ce *client.CloseError
	if !errors.As(st.Err, &ce) || ce.Reason != wire.CloseTokenExpired || !strings.Contains(st.Err.Error(), why) {
		t.Fatalf("disconnected: %v; want token_expired saying %q", st.Err, why)
	}
}

// nextDisconnect waits for the session's next disconnect; a stop fails
// the test.
func nextDisconnect(t *testing.T, states <-chan client.State) client.State {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case st := <-states:
			switch st.Kind {
			case client.StateDisconnected:
				return st
			case client.StateStopped:
				t.Fatalf("session stopped: %v", st.Err)
			}
		case <-timeout:
			t.Fatal("no disconnect")
		}
	}
}

// A token callback that hangs on a refresh, deaf to its context, holds up
// neither the connection's end nor the reconnect: the call is given up at
// the dial timeout as its context says, the connection ends token_expired,
// and the session reconnects with the callback's next token.
func TestSessionRefreshCallbackHangs(t *testing.T) {
	n := startEdge(t, "a", "127.0.0.1:0", "127.0.0.1:0", jwtPayloadAuth{}, nil)
	hang := make(chan struct{})
	defer close(hang)
	var calls atomic.Int32
	states := make(chan client.State, 64)
	r := fast
	r.DialTimeout = 500 * time.Millisecond
	r.Token = func(context.Context) (string, error) {
		switch calls.Add(1) {
		case 1:
			return fakeJWT("hung", time.Now().Add(time.Second)), nil
		case 2:
			<-hang
		}
		return fakeJWT("hung", time.Now().Add(time.Hour)), nil
	}
	r.OnState = func(st client.State) { states <- st }
	s := dialSession(t, n.tcp, r)
	wantTokenExpired(t, states, "deadline")
	waitFor(t, "the reconnect", func() bool { return s.Node() != "" })
}

// A token callback that, asked for a refresh, returns a token for another
// session does not move the connection to it: the edge closes auth and the
// session stops, the reason surfaced in its error.
func TestSessionRefreshForAnotherSessionStops(t *testing.T) {
	n := startEdge(t, "a", "127.0.0.1:0", "127.0.0.1:0", jwtPayloadAuth{}, nil)
	var calls atomic.Int32
	r := fast
	r.Token = func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return fakeJWT("alice", time.Now().Add(time.Second)), nil
		}
		return fakeJWT("mallory", time.Now().Add(time.Hour)), nil
	}
	s := dialSession(t, n.tcp, r)
	select {
	case <-s.Done():
	case <-time.After(testTimeout):
		t.Fatal("session still running")
	}
	var ce *client.CloseError
	if !errors.As(s.Err(), &ce) || ce.Reason != wire.CloseAuth || !strings.Contains(ce.Message, "another session") {
		t.Fatalf("session ended with %v; want auth, another session", s.Err())
	}
	if c := calls.Load(); c != 2 {
		t.Fatalf("%d token calls; want the connect's and one refresh", c)
	}
}
