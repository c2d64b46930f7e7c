package edge_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
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
