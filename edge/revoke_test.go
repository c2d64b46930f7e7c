package edge_test

import (
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Revoke closes the connection at once with reason revoked: the close
// frame goes out ahead of what is queued (held back by the rate limit
// here), which is dead-lettered closed. Info saw it queued; a second
// Revoke finds the connection closing already.
func TestRevokeClosesAtOnce(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1 // one push now, the next in 1,000 s
	n := startNode(t, cfg, edge.Options{})
	r := rawTCP(t, n, "revoked")
	h := n.handle(t, "revoked")
	for _, id := range []string{"p0", "p1", "p2"} {
		mustTryPush(t, h, push.Low, id)
	}
	if f := r.next(t); f.ID != "p0" {
		t.Fatalf("got %s; want p0", f.ID)
	}
	if i := h.Info(); i.Session != "revoked" || i.Transport != "tcp" || i.Low != 2 || i.High != 0 || i.Remote == "" || i.Started.IsZero() {
		t.Fatalf("Info %+v; want session revoked over tcp, 2 low queued", i)
	}
	if !h.Revoke() {
		t.Fatal("Revoke of an open connection reported it closing already")
	}
	if h.Revoke() {
		t.Fatal("a second Revoke reported the connection open")
	}
	wantCloseFrame(t, r, wire.CloseRevoked)
	_ = r.nc.Close()
	<-h.Done()
	dls := n.sink.waitLen(t, 2)
	for i, want := range []string{"p1", "p2"} {
		if dls[i].Frame.ID != want || dls[i].Reason != push.ReasonClosed {
			t.Fatalf("dead letters %+v; want p1 and p2 as closed", dls)
		}
	}
	if d := n.srv.Stats().Disconnects[wire.CloseRevoked]; d != 1 {
		t.Fatalf("disconnects revoked %d; want 1", d)
	}
}
