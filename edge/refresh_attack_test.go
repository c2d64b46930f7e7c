package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// pingFlood writes ping frames to r, a batch at a time, until a write
// fails: the client is never silent, and bytes are waiting on the edge's
// socket at almost every moment.
func pingFlood(r *rawConn) <-chan struct{} {
	one, err := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypePing, Payload: []byte("x")})
	if err != nil {
		panic(err)
	}
	batch := bytes.Repeat(one, 64<<10/len(one))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_ = r.nc.SetWriteDeadline(time.Now().Add(testTimeout))
			if _, err := r.nc.Write(batch); err != nil {
				return
			}
		}
	}()
	return done
}

// A client that never stops sending does not outlive its token: bytes
// waiting at the expiry may be a refresh and are read, but only for a
// moment (edge.ExpiryGrace); then the connection is closed token_expired
// and its queued pushes are dead-lettered closed. Before, each read
// deadline after the expiry fired at once while bytes were waiting, the
// reader spun on it without reading, and the connection stayed open.
func TestTokenExpiryUnderFlood(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1
	// Without the client limits, which would close the flood overloaded
	// first: a client within them (1 MiB a second) keeps bytes waiting too.
	cfg.ClientFrameRate, cfg.ClientByteRate = 0, 0
	n := startNode(t, cfg, edge.Options{Auth: expiringAuth{}})
	exp := time.Now().Add(300 * time.Millisecond)
	r := tokenTCP(t, n, expiringToken("flooder", exp))
	h := n.handle(t, "flooder")
	for _, id := range []string{"p0", "p1", "p2"} {
		mustTryPush(t, h, push.Low, id)
	}
	flooding := pingFlood(r)
	wantClose(t, r, wire.CloseTokenExpired)
	_ = r.nc.Close()
	<-flooding
	<-h.Done()
	dls := n.sink.waitLen(t, 2)
	for i, want := range []string{"p1", "p2"} {
		if dls[i].Frame.ID != want || dls[i].Reason != push.ReasonClosed {
			t.Fatalf("dead letters %+v; want p1 and p2 as closed", dls)
		}
	}
}

// countingAuth is expiringAuth that counts its checks: what a token
// verification would cost the node.
type countingAuth struct {
	expiringAuth
	checks *atomic.Int64
}

func (a countingAuth) AuthenticateIdentity(ctx context.Context, cr edge.Credentials) (edge.Identity, error) {
	a.checks.Add(1)
	return a.expiringAuth.AuthenticateIdentity(ctx, cr)
}

// A flood of refresh frames, each with the one valid token, costs the node
// a check for each only within the refresh rate (a burst of three, then
// one a second): the rest are dropped unchecked and counted limited, and
// the connection stays open. Before, each of the 500 was checked: with
// RS256 some 120 µs of CPU a frame.
func TestRefreshFloodIsChecksBounded(t *testing.T) {
	var checks atomic.Int64
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: countingAuth{checks: &checks}})
	tok := expiringToken("eager", time.Now().Add(time.Hour))
	r := tokenTCP(t, n, tok)
	var flood []byte
	for range 500 {
		b, err := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeRefresh, Payload: []byte(tok)})
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, b...)
	}
	start := time.Now()
	r.sendBytes(t, flood)
	r.send(t, wire.Frame{Type: wire.TypePing, Payload: []byte("after")})
	if f := r.next(t); f.Type != wire.TypePong || string(f.Payload) != "after" {
		t.Fatalf("got %v %q; want the pong", f.Type, f.Payload)
	}
	took := time.Since(start)
	// The handshake's check, the burst, and one a second it took.
	if got, most := checks.Load(), int64(1+3+took/time.Second+1); got > most {
		t.Fatalf("%d checks for 500 refresh frames in %v; want at most %d", got, took, most)
	}
	got := n.srv.Stats().Refreshes
	if got[edge.RefreshOK]+got[edge.RefreshLimited] != 500 || got[edge.RefreshLimited] < 490 || got[edge.RefreshRefused] != 0 {
		t.Fatalf("refreshes %v; want 500 ok or limited, most limited", got)
	}
}

// A refresh frame in the place of the TCP hello is no way in: the
// connection is closed before the authenticator runs, and no session is
// held.
func TestRefreshAsFirstFrame(t *testing.T) {
	var checks atomic.Int64
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: countingAuth{checks: &checks}})
	nc, err := net.Dial("tcp", n.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := &rawConn{nc: nc, br: bufio.NewReader(nc)}
	r.send(t, wire.Frame{Type: wire.TypeRefresh, ID: "intruder", Payload: []byte(expiringToken("intruder", time.Now().Add(time.Hour)))})
	_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		body, err := wire.ReadTCP(r.br, nil, wire.DefaultMaxFrameSize)
		if err != nil {
			break // closed
		}
		if f, _ := wire.Decode(body); f.Type == wire.TypeWelcome {
			t.Fatal("welcomed after a refresh frame")
		}
	}
	if c, held := checks.Load(), n.srv.Stats().Sessions; c != 0 || held != 0 {
		t.Fatalf("%d checks, %d sessions held; want none", c, held)
	}
}

// A refresh frame larger than the frame limit closes the connection
// protocol, unchecked.
func TestOversizeRefresh(t *testing.T) {
	var checks atomic.Int64
	cfg := edge.DefaultConfig()
	n := startNode(t, cfg, edge.Options{Auth: countingAuth{checks: &checks}})
	r := tokenTCP(t, n, expiringToken("big", time.Now().Add(time.Hour)))
	tok := expiringToken("big", time.Now().Add(2*time.Hour))
	huge := append([]byte(tok), bytes.Repeat([]byte{' '}, cfg.MaxFrameSize)...)
	b, err := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeRefresh, Payload: huge})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = r.nc.Write(b) }() // the node stops reading it
	wantClose(t, r, wire.CloseProtocol)
	if c := checks.Load(); c != 1 {
		t.Fatalf("%d checks; want the handshake's only", c)
	}
}

// A refresh is the token the connection lives by from then on: one that
// expires sooner than the first shortens the connection's life, on either
// transport.
func TestRefreshWithEarlierExpShortens(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{Auth: expiringAuth{}})
	for _, addr := range []string{n.tcp, n.ws} {
		t.Run(addr[:2], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c, err := client.Dial(ctx, addr, client.Options{Token: expiringToken("shorter", time.Now().Add(time.Hour))})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Refresh(expiringToken("shorter", time.Now().Add(200*time.Millisecond))); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("not closed at the refreshed, earlier expiry")
			}
			var ce *client.CloseError
			if !errors.As(c.Err(), &ce) || ce.Reason != wire.CloseTokenExpired {
				t.Fatalf("ended with %v; want token_expired", c.Err())
			}
		})
	}
}
