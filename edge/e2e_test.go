package edge_test

import (
	"context"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/push"
)

func TestMain(m *testing.M) {
	if os.Getenv(holdAddrEnv) != "" { // the idle-memory benchmark's client process
		os.Exit(holdClients())
	}
	goleak.VerifyTestMain(m)
}

func TestPushOverBothTransports(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	for _, addr := range []string{n.tcp, n.ws} {
		c := dial(t, addr, "s-"+addr[:2], client.Options{})
		h := n.handle(t, c.Session())
		if err := h.Push(context.Background(), push.Low, pushOf("p1", "hello")); err != nil {
			t.Fatal(err)
		}
		f := recv(t, c)
		if f.ID != "p1" || string(f.Payload) != "hello" || f.Priority != push.Low {
			t.Fatalf("%s: got %+v; want push p1 hello low", addr, f)
		}
	}
}
