package edge_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// 10,000 connect/push/disconnect cycles over real sockets leave no
// connection, registry entry or goroutine behind.
func TestConnectDisconnectCyclesLeaveNothing(t *testing.T) {
	const cycles, workers = 10_000, 8
	var closes atomic.Int64
	allClosed := make(chan struct{})
	cfg := edge.DefaultConfig()
	cfg.ConnectRate = 0 // eight workers cycle faster than its 2,000 a second on a fast machine; TestConnectRate holds it
	n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{
		OnConnect: func(c *edge.Conn) error { return c.TryPush(push.High, pushOf("hi", "hello")) },
		OnClose: func(*edge.Conn, wire.CloseReason, error) {
			if closes.Add(1) == cycles {
				close(allClosed)
			}
		},
	}})
	baseline := goleak.IgnoreCurrent()
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= cycles; i = next.Add(1) {
				addr := n.tcp
				if i%2 == 0 {
					addr = n.ws
				}
				c, err := client.Dial(context.Background(), addr, client.Options{Session: fmt.Sprintf("w%d-%d", w, i%50)})
				if err != nil {
					t.Errorf("cycle %d: %v", i, err)
					return
				}
				if f, err := c.Recv(context.Background()); err != nil || f.ID != "hi" {
					t.Errorf("cycle %d: got %v, %v; want the connect push", i, f.ID, err)
				}
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	<-allClosed
	if l, r := n.srv.Len(), n.srv.Registry().Len(); l != 0 || r != 0 {
		t.Fatalf("after %d cycles: %d connections, %d registry entries; want none", cycles, l, r)
	}
	goleak.VerifyNone(t, baseline)
	if dls := n.sink.all(); len(dls) != 0 {
		t.Fatalf("%d dead letters; every push was read before the client closed", len(dls))
	}
}
