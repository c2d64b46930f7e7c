package edge_test

import (
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// A close frame does not wait for rate-limit tokens: a connection whose
// writer sleeps for the next token tells its client it is closing at once,
// and what stays queued is dead-lettered when it ends.
func TestCloseFrameSkipsTheRateLimit(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.Rate, cfg.Burst = 0.001, 1 // one push now, the next in 1,000 s
	cfg.DrainTimeout = time.Hour
	n := startNode(t, cfg, edge.Options{})
	r := rawTCP(t, n, "slow")
	h := n.handle(t, "slow")
	mustTryPush(t, h, push.High, "p0")
	mustTryPush(t, h, push.High, "p1")
	if f := r.next(t); f.Type != wire.TypePush || f.ID != "p0" {
		t.Fatalf("got %v %s; want push p0", f.Type, f.ID)
	}
	h.Close(wire.CloseShutdown)
	wantCloseFrame(t, r, wire.CloseShutdown)
	_ = r.nc.Close()
	if dls := n.sink.waitLen(t, 1); dls[0].Frame.ID != "p1" || dls[0].Reason != push.ReasonShutdown {
		t.Fatalf("dead letters %+v; want p1 as shutdown", dls)
	}
}
